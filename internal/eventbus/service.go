package eventbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// clockSkew is how far before a version's time a subscription from that
// version starts reading, for events whose publish time is a little behind
// the proxy clock that stamped them.
const clockSkew = time.Minute

// Limits bound what event streams hold. Zero values are unlimited.
type Limits struct {
	// MaxStreams is the most Subscribe streams open at once;
	// MaxStreamsPerClient the most from one client address (the host of
	// the remote address: behind a proxy, the proxy's).
	MaxStreams, MaxStreamsPerClient int
	// BufferBytes bounds the events one stream holds read ahead of its
	// client (an event larger than this passes alone).
	BufferBytes int64
	// Refused, if set, is called with "total" or "per_client" when a
	// stream is refused; Opened with the number of open streams when it
	// changes.
	Refused func(limit string)
	Opened  func(open int)
}

// Service serves wail.v1.EventService on a bus.
type Service struct {
	bus *Bus
	// partitions returns a table's partition count, false if unknown.
	partitions func(table string) (int32, bool)
	limits     Limits
	closing    chan struct{}
	closeOnce  sync.Once

	mu       sync.Mutex
	open     int
	byClient map[string]int
}

// NewService returns the EventService handler, without limits (see
// WithLimits).
func NewService(bus *Bus, partitions func(table string) (int32, bool)) *Service {
	return &Service{bus: bus, partitions: partitions, closing: make(chan struct{}), byClient: map[string]int{}}
}

// WithLimits sets the limits; call it before serving.
func (s *Service) WithLimits(l Limits) *Service {
	s.limits = l
	return s
}

// Open returns how many streams are open.
func (s *Service) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// admit takes a stream slot for client, or says which limit is reached.
func (s *Service) admit(client string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits
	switch {
	case l.MaxStreams > 0 && s.open >= l.MaxStreams:
		s.refused("total")
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"%d event streams are open, the most this server takes (api.max_subscriptions); retry later", s.open))
	case l.MaxStreamsPerClient > 0 && s.byClient[client] >= l.MaxStreamsPerClient:
		s.refused("per_client")
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"%s has %d event streams open, the most one client address may (api.max_subscriptions_per_client); close one first",
			client, s.byClient[client]))
	}
	s.open++
	s.byClient[client]++
	s.opened()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.open--
			if s.byClient[client]--; s.byClient[client] == 0 {
				delete(s.byClient, client)
			}
			s.opened()
		})
	}, nil
}

func (s *Service) opened() {
	if s.limits.Opened != nil {
		s.limits.Opened(s.open)
	}
}

func (s *Service) refused(limit string) {
	if s.limits.Refused != nil {
		s.limits.Refused(limit)
	}
}

// clientOf is the host of a peer address ("" when unknown).
func clientOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// Close ends every open subscription (at server shutdown).
func (s *Service) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

type delivery struct {
	partition int32
	offset    int64
	event     *wailv1.ChangeEvent
	size      int64 // taken from the stream's budget
}

// Subscribe streams the final events of a table, from every partition,
// until the client goes away.
func (s *Service) Subscribe(ctx context.Context, req *connect.Request[wailv1.SubscribeRequest], stream *connect.ServerStream[wailv1.SubscribeResponse]) error {
	release, err := s.admit(clientOf(req.Peer().Addr))
	if err != nil {
		return err
	}
	defer release()
	n, ok := s.partitions(req.Msg.Table)
	if !ok {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("table %q does not exist: create it with `wail table create %s`", req.Msg.Table, req.Msg.Table))
	}
	start, err := ParseStart(req.Msg.From)
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	// Fix where every partition starts, then send the response headers: once
	// the client's call returns, every event published later is delivered.
	offsets := make([]int64, n)
	for p := range offsets {
		if offsets[p], err = s.startOffset(ctx, Topic(req.Msg.Table), int32(p), start); err != nil {
			return connect.NewError(connect.CodeUnavailable, err)
		}
	}
	if err := stream.Send(nil); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-sctx.Done():
		}
	}()
	g, ctx := errgroup.WithContext(sctx)
	out := make(chan delivery, 256)
	buf := newBudget(s.limits.BufferBytes)
	for p := int32(0); p < n; p++ {
		g.Go(func() error { return s.follow(ctx, req.Msg.Table, p, offsets[p], start.AfterVersion, buf, out) })
	}
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case d := <-out:
				err := stream.Send(&wailv1.SubscribeResponse{Event: d.event, Partition: d.partition, Offset: d.offset})
				buf.release(d.size)
				if err != nil {
					return err
				}
			}
		}
	})
	err = g.Wait()
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// follow reads one partition and hands its events to out.
func (s *Service) follow(ctx context.Context, table string, p int32, off int64, after uint64, buf *budget, out chan<- delivery) error {
	topic := Topic(table)
	for {
		r, err := s.bus.log.NewReader(topic, p, off)
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("read %s/%d: %w", topic, p, err))
		}
		err = s.pump(ctx, r, p, after, buf, out)
		r.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("read %s/%d: %w", topic, p, err))
		}
		// retention removed what we were about to read: go on from the start
		if off, _, err = s.bus.log.Bounds(ctx, topic, p); err != nil {
			return connect.NewError(connect.CodeUnavailable, err)
		}
	}
}

func (s *Service) pump(ctx context.Context, r intentlog.Reader, p int32, after uint64, buf *budget, out chan<- delivery) error {
	for {
		recs, err := r.Next(ctx)
		if err != nil {
			return err
		}
		for i := range recs {
			if recs[i].Value == nil {
				continue
			}
			var ev wailv1.ChangeEvent
			if err := proto.Unmarshal(recs[i].Value, &ev); err != nil || ev.Version <= after {
				continue
			}
			size, err := buf.acquire(ctx, int64(len(recs[i].Value)))
			if err != nil {
				return err
			}
			select {
			case out <- delivery{partition: p, offset: recs[i].Offset, event: &ev, size: size}:
			case <-ctx.Done():
				buf.release(size)
				return ctx.Err()
			}
		}
	}
}

func (s *Service) startOffset(ctx context.Context, topic string, p int32, st Start) (int64, error) {
	start, end, err := s.bus.log.Bounds(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	switch {
	case st.Latest:
		return end, nil
	case st.Beginning:
		return start, nil
	case st.Offset >= 0:
		return min(max(st.Offset, start), end), nil
	}
	return s.bus.log.OffsetForTime(ctx, topic, p, hlc.Time(st.AfterVersion).Add(-clockSkew))
}

// budget bounds the bytes of events a stream holds between reading them
// and sending them (nil: unbounded).
type budget struct {
	sem *semaphore.Weighted
	max int64
}

func newBudget(max int64) *budget {
	if max <= 0 {
		return nil
	}
	return &budget{sem: semaphore.NewWeighted(max), max: max}
}

// acquire waits until n bytes (at most the whole budget) are free and
// returns how many it took.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	if b == nil {
		return 0, nil
	}
	n = min(max(n, 1), b.max)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

func (b *budget) release(n int64) {
	if b != nil && n > 0 {
		b.sem.Release(n)
	}
}
