package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// ConsumerConfig says what a Consumer reads.
//
// With Group set, the consumer is a member (Member) of a consumer group of
// Table (EventService.Consume): the group's live members share the
// table's partitions, each partition's events go to one member in order,
// and Ack commits how far the member processed, durably; a member that
// dies or stops acknowledging loses its partitions and its unacknowledged
// events go to another member (at least once).
//
// Without Group, the consumer reads every partition (EventService.
// Subscribe) from From: "latest" (default), "beginning", "snapshot" (every
// key's current state, then the live events), a cursor (Message.Cursor or
// Consumer.Cursor of an earlier run: exactly the events after it), or a
// time (RFC 3339, or "-15m"). Its position is the cursor: keep the last
// one you processed and pass it as From to resume.
type ConsumerConfig struct {
	Table string
	// Group and Member: consumer group mode (both required together).
	Group, Member string
	// Start is where a new group starts: "beginning" (default),
	// "latest" or "snapshot" (every key's current state, marked Snapshot,
	// then the changes). Acknowledge snapshot rows as any event: the
	// snapshot's end is committed as the group's positions once every row
	// was acknowledged, and a member that stops before (it died, or did
	// not acknowledge them within the server's api.group_lease_timeout:
	// Next fails with ErrSnapshotInterrupted) leaves the group without
	// positions, so the next member takes the snapshot again. A group that
	// exists resumes where it committed.
	Start string
	// From is where a subscription starts (without Group).
	From string
	// UntilEnd ends a subscription (Next returns io.EOF) once it delivered
	// what existed when it started (without Group; not with "snapshot").
	UntilEnd bool
	// MaxBatchEvents > 0 asks the server for batches of up to this many
	// events per message (without Group): faster, but only the last event
	// of each batch carries a Cursor. 0: one event per message, each with
	// its cursor.
	MaxBatchEvents int32
	// OnGap, if set, is called (from Next) when a subscription skipped
	// offsets of a partition that the server's retention
	// (log.event_retention) removed before it read them: their events are
	// lost to this consumer (the range counts offsets, not events). It
	// comes before any event of that partition past the gap, and again on
	// a reconnection whose cursor retention passed meanwhile; Cursor then
	// resumes past the gap. A group member is told too (its group reads on
	// from the log's start); the next Ack of the partition commits past
	// the gap. Without OnGap, a gap is only in the server's log.
	OnGap func(gap *wailv1.RetentionGap)
	// FailOnGap: rather than skip what retention removed, NewConsumer or
	// Next fails with a *GapError (errors.Is ErrRetentionGap; the
	// server's out_of_range) naming the partition and offsets, and hands
	// out nothing past the gap: Cursor stays before it (without Group).
	FailOnGap bool
	// OnPartitions, if set, is called (from Next) when the group grants
	// partitions to this member or revokes them. A partition that moves
	// to another member (one joined or left) is revoked once this member
	// acknowledged the events it was sent of it (it gets no more of them
	// meanwhile), or after the server's api.group_lease_timeout: events
	// of a revoked partition that were not acknowledged go to another
	// member.
	OnPartitions func(granted []*wailv1.PartitionGrant, revoked []int32)
	// Reconnect says how Next reopens a stream that dropped (the server
	// went away or restarted, a group member's lease expired).
	Reconnect Reconnect
	// OpenTimeout bounds the wait for the server to answer the opening of
	// a stream (its response headers: the subscription started, the
	// member joined), at NewConsumer and at each reconnection. Over
	// HTTP/1.1 nothing else bounds it (no pings), and a server that took
	// the request and never answered held NewConsumer for ever. Past it,
	// NewConsumer fails with ErrOpenTimeout; a reconnection tries again
	// (Reconnect). Default DefaultOpenTimeout (30s); negative: no bound
	// (ctx only).
	OpenTimeout time.Duration
}

// DefaultOpenTimeout is ConsumerConfig.OpenTimeout when unset.
const DefaultOpenTimeout = 30 * time.Second

// ErrOpenTimeout: the server did not answer the opening of a stream
// within ConsumerConfig.OpenTimeout.
var ErrOpenTimeout = errors.New("the server did not answer the opening of the stream in time")

// Message is one event and where it is.
type Message struct {
	Event     *wailv1.ChangeEvent
	Partition int32
	Offset    int64
	// Snapshot marks an event read from the store (From or Start
	// "snapshot"): Partition and Offset are then 0.
	Snapshot bool
	// Cursor resumes right after this event (subscriptions; empty during
	// a snapshot, and on all but the last event of a batch).
	Cursor string

	epoch uint64
	next  int64
	// row numbers a group snapshot's rows (from 1) on the stream stream;
	// stream counts the group member's streams.
	row    int64
	stream uint64
}

// ErrStreamEnded: the server ended the stream without an error (it is
// shutting down), with Reconnect.Disabled, or Reconnect.MaxEnds times in
// a row before any event: open a new Consumer.
var ErrStreamEnded = errors.New("the server ended the stream")

// ErrConsumerClosed: the consumer was stopped: by Close, by the end of
// NewConsumer's context, or by the end of the context of a Next that
// waited for the stream (which closes it). Open a new Consumer (a
// subscription from Cursor).
var ErrConsumerClosed = errors.New("the consumer is closed")

// ErrAckRefused: an acknowledgement was not committed, because the
// partition moved to another member, or this member is not one any more
// (its stream dropped or its lease expired: it joins again); the events
// come again, to the partition's next owner. Next then hands out no more
// events of what was lost (those on their way to this member when it
// was lost): of that partition at that epoch, or, when this member is not
// one any more, of its stream, and joins again.
var ErrAckRefused = errors.New("acknowledgement refused")

// Consumer reads a table's events, as a group member or from a cursor.
// Next and Ack may be called from different goroutines; Next from one at
// a time.
type Consumer struct {
	events wailv1connect.EventServiceClient
	cfg    ConsumerConfig

	ctx    context.Context
	cancel context.CancelFunc

	sub   *connect.ServerStreamForClient[wailv1.SubscribeResponse]
	group *connect.ServerStreamForClient[wailv1.ConsumeResponse]
	queue []Message // the rest of a batch
	rc    reconnecting

	// mu guards cursor, and the streams against Close: Next (alone)
	// replaces them when it reconnects, Close may come from any goroutine.
	mu     sync.Mutex
	cursor string
	// snap is the group snapshot this member takes on the stream in place.
	snap snapshotAcks
	// stop ends the context of the stream in place (a child of ctx, so
	// that OpenTimeout can end an opening that is not answered).
	stop context.CancelFunc
	// lost is what an acknowledgement's refusal said the group member
	// lost on the stream in place (consumer_lost.go).
	lost lostAssignments
}

// NewConsumer opens a consumer on events (a Client's Events): it joins the
// group, or starts the subscription, before it returns. The server's
// refusal of the stream (an unknown table, an invalid From, Start or
// cursor, a member id already in the group, a FailOnGap subscription's
// gap at its start) is the error of its first Next, not of NewConsumer:
// over Connect a stream's refusal comes in its body, after its headers.
// That Next returns it without reconnecting.
func NewConsumer(ctx context.Context, events wailv1connect.EventServiceClient, cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Table == "" {
		return nil, errors.New("consumer: Table is required")
	}
	if (cfg.Group == "") != (cfg.Member == "") {
		return nil, errors.New("consumer: Group and Member go together")
	}
	switch {
	case cfg.Group != "" && (cfg.From != "" || cfg.UntilEnd || cfg.MaxBatchEvents != 0):
		return nil, errors.New("consumer: From, UntilEnd and MaxBatchEvents are for a subscription, not a group member (Start says where a new group starts)")
	case cfg.Group != "" && cfg.FailOnGap:
		return nil, errors.New("consumer: FailOnGap is for a subscription, not a group member (a group reads on past a gap: OnGap tells it)")
	case cfg.Group == "" && cfg.Start != "":
		return nil, errors.New("consumer: Start is for a group member (Group), not a subscription (From)")
	case cfg.Reconnect.SteadyAfter < 0:
		return nil, fmt.Errorf("consumer: Reconnect.SteadyAfter is %s: it must not be negative (0: DefaultSteadyAfter, %s)", cfg.Reconnect.SteadyAfter, DefaultSteadyAfter)
	}
	c := &Consumer{events: events, cfg: cfg}
	c.ctx, c.cancel = context.WithCancel(ctx)
	if err := c.open(cfg.From); err != nil {
		c.cancel()
		return nil, fmt.Errorf("consumer of %s: %w", cfg.Table, gapError(err))
	}
	return c, nil
}

// open opens the group member's stream, or the subscription's from from,
// within OpenTimeout: the call returns once the server answered (its
// response headers).
func (c *Consumer) open(from string) error {
	// The stream in place is kept when a new one cannot open (the
	// consumer was closed meanwhile): Next and Close still have one.
	ctx, stop := context.WithCancel(c.ctx)
	timeout := cmp.Or(c.cfg.OpenTimeout, DefaultOpenTimeout)
	cut := func() bool { return false } // whether the timeout cut the opening
	if timeout > 0 {
		timer := time.AfterFunc(timeout, stop)
		cut = func() bool { return !timer.Stop() }
	}
	var (
		g   *connect.ServerStreamForClient[wailv1.ConsumeResponse]
		s   *connect.ServerStreamForClient[wailv1.SubscribeResponse]
		err error
	)
	if c.cfg.Group != "" {
		g, err = c.events.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: c.cfg.Table, Group: c.cfg.Group,
			Member: c.cfg.Member, Start: c.cfg.Start, AckSnapshot: true, ToldSnapshotId: c.toldSnapshotID()}))
	} else {
		s, err = c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: c.cfg.Table, From: from,
			UntilEnd: c.cfg.UntilEnd, MaxBatchEvents: c.cfg.MaxBatchEvents, FailOnGap: c.cfg.FailOnGap}))
	}
	if cut() && c.ctx.Err() == nil { // answered or not, the stream's context is over
		if err == nil {
			closeEither(g, s)
		}
		stop()
		return fmt.Errorf("%w: no answer within %s (ConsumerConfig.OpenTimeout)", ErrOpenTimeout, timeout)
	}
	if err != nil {
		stop()
		return err
	}
	if err := c.setStream(g, s, stop); err != nil {
		return err
	}
	if s != nil {
		// The server answered: its start is the position (Cursor) from
		// now on, before any Next.
		c.startCursor()
	}
	return nil
}

// closeEither closes the stream that is not nil.
func closeEither(g *connect.ServerStreamForClient[wailv1.ConsumeResponse], s *connect.ServerStreamForClient[wailv1.SubscribeResponse]) {
	if g != nil {
		_ = g.Close()
	} else {
		_ = s.Close()
	}
}

// setStream puts the stream just opened (its context ended by stop) in
// place, unless Close came meanwhile: it then closes it.
func (c *Consumer) setStream(g *connect.ServerStreamForClient[wailv1.ConsumeResponse], s *connect.ServerStreamForClient[wailv1.SubscribeResponse], stop context.CancelFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ctx.Err(); err != nil {
		closeEither(g, s)
		stop()
		return err
	}
	if g != nil {
		c.group = g
		c.snap = snapshotAcks{stream: c.snap.stream + 1, told: c.snap.told, toldID: c.snap.toldID}
		c.lost = lostAssignments{}
	} else {
		c.sub = s
	}
	c.stop = stop
	c.rc.openedAt = time.Now()
	return nil
}

// Next returns the next event. When the stream drops once it was up (the
// server went away or restarted: unavailable, or the end of the stream;
// its connection closed or reset, by a load balancer say; a group member
// whose lease expired: aborted), Next reopens it with
// backoff (Reconnect): a subscription resumes exactly after the last
// event Next returned (its cursor, or the stream's start), a group member
// joins again and gets what was not acknowledged again. It fails with
// io.EOF at the end of an UntilEnd subscription, with ctx's error when
// ctx ends (which stops the consumer: ErrConsumerClosed after), with
// ErrSnapshotInterrupted when the stream dropped during a snapshot, with
// ErrStreamEnded when the server ended Reconnect.MaxEnds streams in a row
// before any event, and with the server's error otherwise (or every
// error with Reconnect.Disabled): open a new Consumer then.
func (c *Consumer) Next(ctx context.Context) (Message, error) {
	for {
		// Before the rest of a batch too: closed, or with ctx ended, Next
		// hands out nothing more (Cursor stays at what it returned).
		if err := ctx.Err(); err != nil {
			return Message{}, err
		}
		if c.ctx.Err() != nil {
			return Message{}, c.closed()
		}
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			if c.isLost(m) {
				continue // the next owner has it again
			}
			return c.deliver(m), nil
		}
		if err := c.receive(ctx); err != nil {
			return Message{}, err
		}
	}
}

func (c *Consumer) deliver(m Message) Message {
	if m.Cursor != "" {
		c.mu.Lock()
		c.cursor = m.Cursor
		c.mu.Unlock()
	}
	return m
}

// receive reads one message of the stream into the queue (a call that
// only moves the cursor, or changes partitions, queues nothing). The
// stream's Receive does not watch ctx: ctx ending closes the stream.
func (c *Consumer) receive(ctx context.Context) error {
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	if c.group != nil {
		if c.memberLost() {
			return c.dropped(ctx, errMemberLost)
		}
		if !c.group.Receive() {
			err := c.group.Err()
			if c.memberLost() && (err == nil || connect.CodeOf(err) == connect.CodeCanceled) {
				err = errMemberLost // Ack ended the stream (not the server, whose error is kept)
			}
			return c.dropped(ctx, err)
		}
		r := c.group.Msg()
		c.rc.up(r.Event != nil)
		// A message other than a snapshot row or its end ends the
		// snapshot: the server sends the member's join (an empty message)
		// once the snapshot's end is committed.
		c.rc.inSnapshot = (r.Event != nil && r.Snapshot) || r.SnapshotEnd
		again := (r.Event != nil && r.Snapshot) || r.SnapshotEnd
		told, toldID := c.snapshotTold(again)
		if told && !again && r.CommittedSnapshotId != 0 && r.CommittedSnapshotId != toldID {
			// The member's join, after this member told the server the
			// end of its snapshot on a stream that dropped: the server did
			// not commit that end, and another member took the snapshot
			// and committed its own meanwhile (the join says whose end the
			// group's positions are). This member's rows are not the
			// group's: the changes between the two ends would be missed.
			_ = c.Close()
			return fmt.Errorf("consumer of %s: %w (the snapshot's end was not committed: the stream dropped first, and another member's snapshot was committed meanwhile)",
				c.cfg.Table, ErrSnapshotInterrupted)
		}
		if told && again {
			// A snapshot row, or a snapshot's end, after this member told
			// the server the end of its snapshot (neither follows the end
			// on its stream): the stream it was on dropped, and the server
			// did not commit that end (it died first): the group takes the
			// snapshot again, here (an end first: the new one has no row).
			// A new one leaves out the keys deleted since.
			_ = c.Close()
			return fmt.Errorf("consumer of %s: %w (the snapshot's end was not committed: the stream dropped first, and the group takes it again)",
				c.cfg.Table, ErrSnapshotInterrupted)
		}
		if (len(r.Granted) > 0 || len(r.Revoked) > 0) && c.cfg.OnPartitions != nil {
			c.cfg.OnPartitions(r.Granted, r.Revoked)
		}
		switch {
		case r.Event != nil && r.Snapshot:
			m := Message{Event: r.Event, Partition: r.Partition, Offset: r.Offset, Snapshot: true}
			m.row, m.stream = c.snapRow()
			c.queue = append(c.queue, m)
		case r.Event != nil:
			c.mu.Lock()
			stream := c.snap.stream
			c.mu.Unlock()
			c.queue = append(c.queue, Message{Event: r.Event, Partition: r.Partition, Offset: r.Offset, epoch: r.Epoch, next: r.Next, stream: stream})
		case r.SnapshotEnd:
			return c.snapshotEnded(ctx, r.SnapshotId)
		case r.Gap != nil && c.cfg.OnGap != nil:
			c.cfg.OnGap(r.Gap)
		}
		return nil
	}
	ok := c.sub.Receive()
	c.startCursor()
	if !ok {
		err := c.sub.Err()
		if err == nil && c.rc.atEnd {
			return io.EOF
		}
		return c.dropped(ctx, err)
	}
	r := c.sub.Msg()
	event := r.Event != nil || len(r.Events) > 0
	c.rc.up(event)
	c.rc.received = c.rc.received || event
	switch {
	case r.Event != nil:
		c.queue = append(c.queue, Message{Event: r.Event, Partition: r.Partition, Offset: r.Offset, Snapshot: r.Snapshot, Cursor: r.Cursor})
	case len(r.Events) > 0:
		for i, e := range r.Events {
			m := Message{Event: e.Event, Partition: e.Partition, Offset: e.Offset, Snapshot: e.Snapshot}
			if i == len(r.Events)-1 {
				m.Cursor = r.Cursor
			}
			c.queue = append(c.queue, m)
		}
	case r.Gap != nil: // retention removed what it was to read: skipped
		c.deliver(Message{Cursor: r.Cursor})
		if c.cfg.OnGap != nil {
			c.cfg.OnGap(r.Gap)
		}
	case r.Cursor != "": // the end of a snapshot or of an until-end stream
		c.deliver(Message{Cursor: r.Cursor})
		// Until end, only this message says the stream read to its end: a
		// stream that ends cleanly before it (the server shut down) is
		// resumed like any other.
		c.rc.atEnd = c.cfg.UntilEnd
	}
	return nil
}

func (c *Consumer) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.ctx.Err() != nil {
		return c.closed()
	}
	if err == nil {
		return fmt.Errorf("consumer of %s: %w (shutting down?): open a new consumer", c.cfg.Table, ErrStreamEnded)
	}
	return fmt.Errorf("consumer of %s: %w", c.cfg.Table, gapError(err))
}

func (c *Consumer) closed() error {
	return fmt.Errorf("consumer of %s: %w: open a new consumer", c.cfg.Table, ErrConsumerClosed)
}

// Ack says that m and every event before it on its partition were
// processed. In a group it commits that durably (an Ack of a partition
// that moved to another member fails with ErrAckRefused: that member gets
// the events again); in a subscription it does nothing (keep Cursor). A
// group snapshot's row acknowledges it and every row before it; once all
// were, the snapshot's end is committed (ErrAckRefused: the snapshot's
// stream ended, and the snapshot is taken again).
func (c *Consumer) Ack(ctx context.Context, m Message) error {
	if c.cfg.Group == "" {
		return nil
	}
	if m.Snapshot {
		return c.ackSnapshotRow(ctx, m)
	}
	resp, err := c.events.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: c.cfg.Table, Group: c.cfg.Group, Member: c.cfg.Member,
		Acks: []*wailv1.PartitionAck{{Partition: m.Partition, Epoch: m.epoch, Next: m.next}}}))
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		// Not a member (any more): its stream dropped or its lease
		// expired, and its partitions went to others (or to it again,
		// under new epochs); either way the events come again. Next
		// hands out no more of that stream's and joins again.
		c.lose(m, true)
		return fmt.Errorf("%w: %w", ErrAckRefused, err)
	}
	if ce := new(connect.Error); errors.As(err, &ce) && ce.Code() == connect.CodeCanceled && ctx.Err() == nil {
		// A connection the server reset (connect reads ECONNRESET as a
		// client gone): the server is away, as unavailable says.
		if cause := ce.Unwrap(); cause != nil {
			err = connect.NewError(connect.CodeUnavailable, cause)
		}
	}
	if err != nil {
		return fmt.Errorf("consumer of %s: ack: %w", c.cfg.Table, err)
	}
	if len(resp.Msg.Refused) > 0 {
		// The partition moved on (at m's epoch): Next hands out no more
		// of its events at that epoch.
		c.lose(m, false)
		var why []string
		for _, r := range resp.Msg.Refused {
			why = append(why, fmt.Sprintf("partition %d: %s", r.Partition, r.Reason))
		}
		return fmt.Errorf("%w: %s", ErrAckRefused, strings.Join(why, "; "))
	}
	return nil
}

// Cursor is the position after the last event Next returned that carried
// one (subscriptions; before any, the stream's start once it started, ""
// before and during a snapshot): pass it as From to resume exactly there.
func (c *Consumer) Cursor() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor
}

// Close leaves the group (its partitions go to the other members at once)
// or ends the subscription. It may be called from any goroutine: a Next
// waiting then returns an error.
func (c *Consumer) Close() error {
	c.cancel()
	return c.closeStream()
}

func (c *Consumer) closeStream() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.stop()
	if c.group != nil {
		return c.group.Close()
	}
	return c.sub.Close()
}
