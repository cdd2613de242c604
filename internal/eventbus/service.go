package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// clockSkew is how far before a version's time a subscription from that
// version starts reading, for events whose publish time is a little behind
// the proxy clock that stamped them.
const clockSkew = time.Minute

// Service serves wail.v1.EventService on a bus.
type Service struct {
	bus *Bus
	// partitions returns a table's partition count, false if unknown.
	partitions func(table string) (int32, bool)
	closing    chan struct{}
	closeOnce  sync.Once
}

// NewService returns the EventService handler.
func NewService(bus *Bus, partitions func(table string) (int32, bool)) *Service {
	return &Service{bus: bus, partitions: partitions, closing: make(chan struct{})}
}

// Close ends every open subscription (at server shutdown).
func (s *Service) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

type delivery struct {
	partition int32
	offset    int64
	event     *wailv1.ChangeEvent
}

// Subscribe streams the final events of a table, from every partition,
// until the client goes away.
func (s *Service) Subscribe(ctx context.Context, req *connect.Request[wailv1.SubscribeRequest], stream *connect.ServerStream[wailv1.SubscribeResponse]) error {
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
	for p := int32(0); p < n; p++ {
		g.Go(func() error { return s.follow(ctx, req.Msg.Table, p, offsets[p], start.AfterVersion, out) })
	}
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case d := <-out:
				if err := stream.Send(&wailv1.SubscribeResponse{Event: d.event, Partition: d.partition, Offset: d.offset}); err != nil {
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
func (s *Service) follow(ctx context.Context, table string, p int32, off int64, after uint64, out chan<- delivery) error {
	topic := Topic(table)
	for {
		r, err := s.bus.log.NewReader(topic, p, off)
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("read %s/%d: %w", topic, p, err))
		}
		err = s.pump(ctx, r, p, after, out)
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

func (s *Service) pump(ctx context.Context, r intentlog.Reader, p int32, after uint64, out chan<- delivery) error {
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
			select {
			case out <- delivery{partition: p, offset: recs[i].Offset, event: &ev}:
			case <-ctx.Done():
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
