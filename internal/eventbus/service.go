package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
	"github.com/wail-cdc/wail/internal/store"
)

// clockSkew is how far before a version's time a subscription from that
// version starts reading, for events whose publish time is a little behind
// the proxy clock that stamped them.
const clockSkew = time.Minute

// Limits bound what event streams hold. Zero values are unlimited.
type Limits struct {
	// BufferBytes bounds the events one stream holds read ahead of its
	// client (an event larger than this passes alone).
	BufferBytes int64
	// Pool counts (and, with a max, bounds) what every stream of the
	// process holds read ahead (api.max_subscription_buffered_bytes).
	Pool *readahead.Pool
}

// Service is what wail.v1.EventService serves on a bus (its handlers are
// package api's, which also counts and limits the streams open): event
// streams (Stream) and consumer groups (groups.go).
type Service struct {
	bus *Bus
	// partitions returns a table's partition count, false if unknown.
	partitions func(table string) (int32, bool)
	limits     Limits
	// created returns a table's creation time in Unix microseconds (nil,
	// or 0: unknown): cursors carry it, so that one of a table dropped and
	// created again under the same name is refused.
	created   func(table string) int64
	snapshots Snapshots
	groups    *group.Groups
	logger    *slog.Logger
	// gapCount counts the retention gaps streams meet (WithRetentionGaps; nil: none).
	gapCount *group.RetentionGaps
	// sinkPaused runs a reset of a webhook sink's group while the sink
	// is paused (WithSinks; nil: no sinks).
	sinkPaused func(ctx context.Context, table, name string, reset func(context.Context) error) error
	closing    chan struct{}
	closeOnce  sync.Once
}

// NewService returns the event streams and groups of a bus, without
// limits (see WithLimits).
func NewService(bus *Bus, partitions func(table string) (int32, bool)) *Service {
	return &Service{bus: bus, partitions: partitions, closing: make(chan struct{})}
}

// WithTableCreated makes cursors carry each table's creation time
// (created: Unix microseconds, 0 unknown), so that a cursor of a table
// that was dropped and created again under the same name is refused;
// call it before serving.
func (s *Service) WithTableCreated(created func(table string) int64) *Service {
	s.created = created
	return s
}

// createdOf is created(table), or 0.
func (s *Service) createdOf(table string) int64 {
	if s.created == nil {
		return 0
	}
	return s.created(table)
}

// WithLogger sets where the service logs what an operator must act on
// (default: slog.Default()); call it before serving.
func (s *Service) WithLogger(l *slog.Logger) *Service {
	s.logger = l
	return s
}

// retentionSkipped logs that a stream of table passes offsets [from, to) of
// partition p, which retention removed before it read them: its
// subscriber misses those events (and is told: SubscribeResponse.gap), as
// a consumer group's member does (and says, group.session), and as
// Kafka's auto.offset.reset=earliest.
func (s *Service) retentionSkipped(table string, p int32, from, to int64) {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	l.Warn(fmt.Sprintf("event stream: retention removed events of partition %d before this stream read them: skipped %d offsets, "+
		"reading on from the log's start", p, to-from),
		"table", table, "partition", p, "from", from, "to", to,
		"action", "keep log.event_retention above how long subscribers may stay away or fall behind")
}

// WithRetentionGaps makes the streams count the retention gaps they meet
// into r (nil: none); call it before serving.
func (s *Service) WithRetentionGaps(r *group.RetentionGaps) *Service {
	s.gapCount = r
	return s
}

// WithSinks makes a reset of webhook sink name's group run through
// whilePaused (sink.Manager.WhilePaused), which refuses it with
// group.ErrMembers while the sink runs; call it before serving.
func (s *Service) WithSinks(whilePaused func(ctx context.Context, table, name string, reset func(context.Context) error) error) *Service {
	s.sinkPaused = whilePaused
	return s
}

// WithLimits sets the limits; call it before serving.
func (s *Service) WithLimits(l Limits) *Service {
	s.limits = l
	return s
}

// Close ends every open stream and group member (at server shutdown).
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.groups != nil {
			s.groups.Close()
		}
	})
}

// batch is what a partition reader hands the stream: the events of one
// read, and its position after it.
type batch struct {
	p      int32
	events []liveEvent
	next   int64
	size   int64 // taken from the stream's budget
	// rewind: the partition's log lost what the stream read from next on
	// (its tail, or where it diverges) and new events take those offsets
	// again: its position moves back to next (no events).
	rewind bool
	// gap: retention removed what the stream was to read, up to next,
	// where its position moves (no events); the subscriber is told.
	gap *wailv1.RetentionGap
}

// Stream streams the final events of a table, from every partition (see
// SubscribeRequest for where it starts): it calls started once every
// partition's start is fixed (every event published after started
// returns is delivered), then send with each message, until ctx ends or
// Close is called (it returns nil), the stream is over (until_end), or
// started or send fails (their error is returned). Its own errors are
// ErrNotFound, ErrBadFrom, ErrBadCursor, ErrInvalid, ErrNoSnapshots,
// ErrSnapshotBusy, ErrRetentionGap (fail_on_gap), or the log failing. Webhook sinks call it in the
// process; the API serves Subscribe.
func (s *Service) Stream(ctx context.Context, msg *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error {
	return s.Subscribe(ctx, msg, false, func(string) error { return started() }, send)
}

// Subscribe is Stream whose started gets the cursor of where the stream
// starts ("" for from "snapshot": its start does not resume it), which
// the API hands the client: a client that loses the stream before any
// event resumes there, without a gap. With encoded, the caller sends the
// messages as binary protobuf and nothing else reads their events: an
// event whose record is exactly its encoding is passed on without being
// decoded (its ChangeEvent holds that encoding as unknown fields, see
// encodedLiveEvent), the same bytes on the wire.
func (s *Service) Subscribe(ctx context.Context, msg *wailv1.SubscribeRequest, encoded bool, started func(start string) error, send func(*wailv1.SubscribeResponse) error) error {
	table := msg.Table
	n, ok := s.partitions(table)
	if !ok {
		return unknownTable(table)
	}
	start, err := ParseStart(msg.From)
	if err != nil {
		return err
	}
	snapKeys := 0
	if start.Snapshot {
		if msg.UntilEnd {
			return invalid(errors.New(`until_end does not go with from "snapshot": take the snapshot without it`))
		}
		if s.snapshots.Source == nil {
			return kindError{ErrNoSnapshots, errors.New(`this server's store cannot list keys: from "snapshot" is not available; use "beginning"`)}
		}
		snapKeys = s.snapshots.maxKeys()
	}
	// Fix where every partition starts (and ends), then send the response
	// headers: once the client's call returns, every event published later
	// is delivered.
	created := s.createdOf(table)
	// The topic's id before its bounds: cursors carry it (version 4),
	// and the readers check their records against it.
	id, err := s.topicID(ctx, table)
	if err != nil {
		return err
	}
	offsets, after, gaps, err := s.startOffsets(ctx, table, n, created, TopicPrint(id), "", start, func(gap *wailv1.RetentionGap) error {
		s.gapCount.Add(table, "", gap.From, gap.To)
		if msg.FailOnGap {
			return gapError(table, gap)
		}
		s.retentionSkipped(table, gap.Partition, gap.From, gap.To)
		return nil
	})
	if err != nil {
		return err
	}
	var until []int64
	if msg.UntilEnd {
		if until, err = s.bus.ends(ctx, table, n); err != nil {
			return err
		}
	}
	startCursor := ""
	if !start.Snapshot {
		startCursor = Cursor{Table: table, Offsets: offsets, AfterVersion: after, Created: created, Topic: TopicPrint(id)}.String()
	}
	if err := started(startCursor); err != nil {
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
	core := newStreamCore(table, offsets, until, snapKeys)
	core.after, core.created, core.topic = after, created, TopicPrint(id)
	out := make(chan batch, 64)
	per := int(min(max(msg.MaxBatchEvents, 0), MaxBatchEvents))
	buf := s.limits.Pool.Stream(s.limits.BufferBytes)
	defer buf.Close() // after g.Wait: what is still queued goes back to the pool
	for p := int32(0); p < n; p++ {
		end := int64(-1)
		if until != nil {
			end = until[p]
		}
		g.Go(func() error {
			return s.follow(ctx, table, id, p, offsets[p], end, after, msg.FailOnGap, encoded, buf, out)
		})
	}
	var snap <-chan snapshotMsg
	if start.Snapshot {
		c := make(chan snapshotMsg, 4)
		snap = c
		g.Go(func() error { return s.snapshot(ctx, table, n, buf, c) })
	}
	g.Go(func() error {
		defer cancel() // the stream is over: stop the readers
		// A start below the log's start: the gaps first.
		for _, gap := range gaps {
			if err := send(&wailv1.SubscribeResponse{Gap: gap, Cursor: core.cursor()}); err != nil {
				return err
			}
		}
		if core.done() {
			return send(&wailv1.SubscribeResponse{Cursor: core.cursor()})
		}
		for {
			var resps []*wailv1.SubscribeResponse
			var size int64
			var err error
			select {
			case <-ctx.Done():
				return nil
			case b := <-out:
				resps, err = core.batch(b)
				size = b.size
				// Batching: take what else the queue holds, without
				// waiting, up to a message's worth of events.
				for more := per > 0; more && err == nil && len(resps) < per && !core.done(); {
					select {
					case b := <-out:
						var rs []*wailv1.SubscribeResponse
						rs, err = core.batch(b)
						resps, size = append(resps, rs...), size+b.size
					default:
						more = false
					}
				}
			case m := <-snap:
				resps, err = m.apply(core)
				size = m.size
			}
			if err == nil {
				err = sendAll(send, pack(resps, per))
			}
			buf.Release(size)
			if err != nil {
				return err
			}
			if core.done() {
				return send(&wailv1.SubscribeResponse{Cursor: core.cursor()})
			}
		}
	})
	if err = g.Wait(); errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// MaxBatchEvents caps SubscribeRequest.max_batch_events.
const MaxBatchEvents = 1000

// pack puts the events of resps into messages of up to per events each
// (per 0: as they are, one event per message), each with the cursor of
// its last event; messages without an event (a cursor) stay as they are,
// in place. resps is what one read of the stream's queue gave: a batch
// never waits for more events.
func pack(resps []*wailv1.SubscribeResponse, per int) []*wailv1.SubscribeResponse {
	if per == 0 {
		return resps
	}
	var out []*wailv1.SubscribeResponse
	var cur *wailv1.SubscribeResponse
	for _, r := range resps {
		if r.Event == nil {
			out, cur = append(out, r), nil
			continue
		}
		if cur == nil || len(cur.Events) >= per {
			cur = &wailv1.SubscribeResponse{Events: make([]*wailv1.StreamedEvent, 0, min(per, len(resps)))}
			out = append(out, cur)
		}
		cur.Events = append(cur.Events, &wailv1.StreamedEvent{Event: r.Event, Partition: r.Partition, Offset: r.Offset, Snapshot: r.Snapshot})
		cur.Cursor = r.Cursor
	}
	return out
}

func sendAll(send func(*wailv1.SubscribeResponse) error, resps []*wailv1.SubscribeResponse) error {
	for _, r := range resps {
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// follow reads one partition from off and hands its events to out, up to
// end (-1: forever). Past what retention removed before it read it, it
// fails with ErrRetentionGap (failOnGap), or hands out the gap and goes on
// from the log's start. Records of a topic whose id is not id (when not
// zero: the id read before the stream's start offsets) fail it with
// intentlog.ErrUnknownTopic (sameTopic).
func (s *Service) follow(ctx context.Context, table string, id intentlog.TopicID, p int32, off, end int64, after uint64, failOnGap, encoded bool, buf *readahead.Stream, out chan<- batch) error {
	topic := Topic(table)
	tries := 0         // answers out of range in a row within the log's bounds
	epoch := int32(-1) // of the record before off, after a dropped read
	again := false     // off is where a dropped read started
	for end < 0 || off < end {
		var r intentlog.Reader
		var err error
		if epoch >= 0 {
			r, err = intentlog.ReaderAt(s.bus.log, topic, p, intentlog.EpochOffset{Offset: off, Epoch: epoch})
		} else {
			r, err = s.bus.log.NewReader(topic, p, off)
		}
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		if again {
			// Where a reader of the topic of id stopped: another topic
			// of the name is ErrUnknownTopic, not the old one truncated.
			intentlog.PinTopicID(r, id)
		}
		validated := epoch >= 0
		epoch, again = -1, false
		err = s.pump(ctx, r, id, p, end, after, encoded, buf, out)
		pos := r.Position()
		if d, ok := errors.AsType[*droppedRead](err); ok {
			// The process's read-ahead is full and the stream holds
			// events: the read was dropped, not held uncounted; read
			// again from its first offset once the stream may take it,
			// checked (Kafka) against the leader epoch read before it,
			// as the reader would have gone on.
			epoch = intentlog.EpochBefore(r, d.at)
			r.Close()
			if buf.Room(ctx, d.size) != nil {
				return nil
			}
			off, again = d.at, true
			continue
		}
		r.Close()
		if validated && errors.Is(err, intentlog.ErrEpochUnknown) && ctx.Err() == nil {
			off, again = pos, true // the log no longer knows that epoch: unchecked, as before
			continue
		}
		if tr, ok := errors.AsType[*intentlog.Truncation](err); ok && tr.From >= 0 && ctx.Err() == nil {
			// The log lost events the stream read (Kafka's leader-epoch
			// check) and new events took their offsets: they are
			// delivered, from where it diverges.
			var ok bool
			if off, ok = rewind(ctx, p, tr.From, end, out); !ok || (end >= 0 && off >= end) {
				return nil
			}
			continue
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			return nil // reached end
		case !errors.Is(err, intentlog.ErrOffsetOutOfRange):
			return fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		o, err := intentlog.PlaceOutOfRange(ctx, s.bus.log, topic, p, pos, err, tries+1)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch o.Placement {
		case intentlog.PastEnd:
			// The log lost its tail (an unclean Kafka leader election)
			// and new events take those offsets again: they are
			// delivered, as a stream resumed from a cursor past the end
			// does (clamped to it). Before, the reader started again at
			// the log's start and the stream passed every offset below
			// its position, the new events with them.
			tries = 0
			var ok bool
			if off, ok = rewind(ctx, p, o.End, end, out); !ok || (end >= 0 && off >= end) {
				return nil
			}
			continue
		case intentlog.Within:
			// transient (a leader not caught up): again, after a pause
			tries++
			off = pos
			continue
		}
		start := o.Start
		// retention removed what we were about to read: fail, or say so
		// and go on from the start
		gap := &wailv1.RetentionGap{Partition: p, From: pos, To: start}
		s.gapCount.Add(table, "", pos, start)
		if failOnGap {
			return gapError(table, gap)
		}
		s.retentionSkipped(table, p, pos, start)
		tries = 0
		off = start
		select {
		case out <- batch{p: p, next: off, gap: gap}:
		case <-ctx.Done():
			return nil
		}
		if end >= 0 && off >= end {
			// ... which is past the end: the stream's position moved
			// there, so that an until-end stream ends (it waited for ever).
			return nil
		}
	}
	return nil
}

// rewind moves partition p of a stream back to at, below its position,
// where the log lost what the stream read and new events take those
// offsets again, and returns where its reader goes on (ok false: ctx
// ended). An until-end stream (end >= 0) is done with the partition: what
// it was to deliver up to end is gone, and the new events came after it
// started.
func rewind(ctx context.Context, p int32, at, end int64, out chan<- batch) (next int64, ok bool) {
	b := batch{p: p, next: at, rewind: true}
	if end >= 0 {
		b = batch{p: p, next: end}
	}
	select {
	case out <- b:
		return b.next, true
	case <-ctx.Done():
		return 0, false
	}
}

// pump reads r until end (-1: until an error), each batch of records
// checked first to come from the topic with id (sameTopic). A batch the
// stream cannot take ends it with a *droppedRead.
func (s *Service) pump(ctx context.Context, r intentlog.Reader, id intentlog.TopicID, p int32, end int64, after uint64, encoded bool, buf *readahead.Stream, out chan<- batch) error {
	for end < 0 || r.Position() < end {
		// Past the process's budget, not before the client took what
		// the stream holds: a batch read would wait here, uncounted.
		if err := buf.Wait(ctx); err != nil {
			return err
		}
		from := r.Position()
		recs, err := r.Next(ctx)
		if err != nil {
			return err
		}
		if err := sameTopic(r, id); err != nil {
			return err
		}
		b := batch{p: p, next: r.Position()}
		for i := range recs {
			ev, ok := s.readEvent(&recs[i], encoded)
			if !ok || ev.version <= after {
				continue
			}
			b.events = append(b.events, ev)
			b.size += ev.memory()
		}
		size := b.size
		var ok bool
		if b.size, ok, err = buf.Take(ctx, size); err != nil {
			return err
		} else if !ok {
			return &droppedRead{at: from, size: size}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			buf.Release(b.size)
			return ctx.Err()
		}
	}
	return nil
}

// droppedRead is a pump's read the stream could not take (Stream.Take):
// its records were dropped, to read again from at once the stream has
// room for size bytes.
type droppedRead struct{ at, size int64 }

func (d *droppedRead) Error() string {
	return fmt.Sprintf("read at %d dropped: the process's read-ahead is full", d.at)
}

// readEvent returns the event of a record; ok is false for a record that
// is not one (a tombstone) or cannot be decoded. With encoded, an
// envelope that is exactly its event's encoding is passed on as it is
// (encodedLiveEvent).
func (s *Service) readEvent(r *intentlog.Record, encoded bool) (liveEvent, bool) {
	if encoded && isEnvelope(r) {
		if ev, ok := encodedLiveEvent(r.Offset, r.Value); ok {
			return ev, true
		}
	}
	e, ok, err := Decode(r)
	if !ok || err != nil {
		return liveEvent{}, false
	}
	return newLiveEvent(r.Offset, e.Proto()), true
}

// startOffsets returns where each partition of a stream starts, the
// version at or below which it skips events (the start's, or its
// cursor's), and the gaps of a start (a cursor, an offset) below a
// partition's log start, each passed to gapped first (nil: none), whose
// error fails it. created is the table's creation time (0: unknown),
// which a cursor that carries one must match. fp is the fingerprint of
// the event topic's id, read before its bounds (0: the log has no ids):
// a cursor of a topic with another one (deleted and created again behind
// wail's back) starts every partition at the new topic's start (its
// offset 0: the gap to the log's start reported as for any cursor), said
// in a WARN naming group (the group reset to the cursor; "": a stream).
func (s *Service) startOffsets(ctx context.Context, table string, n int32, created int64, fp uint64, group string, st Start,
	gapped func(*wailv1.RetentionGap) error) ([]int64, uint64, []*wailv1.RetentionGap, error) {
	var cur Cursor
	if st.Cursor != "" {
		var err error
		if cur, err = ParseCursor(st.Cursor, table, n); err != nil {
			return nil, 0, nil, err
		}
		if cur.Created != 0 && created != 0 && cur.Created != created {
			return nil, 0, nil, fmt.Errorf("%w: it belongs to an earlier table %q, dropped since and created again (at %s): "+
				"its positions mean nothing in this one; start from \"beginning\" or a time",
				ErrBadCursor, table, time.UnixMicro(created).UTC().Format(time.RFC3339))
		}
		st.AfterVersion = cur.AfterVersion
		if cur.Topic != 0 && fp != 0 && cur.Topic != fp {
			s.topicReplaced(table, group, cur.Topic, fp)
			cur.Offsets = make([]int64, n) // the new topic's start
		}
	}
	if st.Ago > 0 {
		st.At = time.Now().Add(-st.Ago)
	}
	topic := Topic(table)
	offsets := make([]int64, n)
	var gaps []*wailv1.RetentionGap
	for p := range offsets {
		start, end, err := s.bus.log.Bounds(ctx, topic, int32(p))
		if err != nil {
			return nil, 0, nil, err
		}
		switch {
		case st.Latest || st.Snapshot:
			offsets[p] = end
		case st.Beginning:
			offsets[p] = start
		case cur.Offsets != nil || st.Offset >= 0:
			// Below start: retention removed them (a gap; logged); above
			// end: the log lost its tail (Kafka unclean election, a
			// repair) and new events take those offsets again.
			o := st.Offset
			if cur.Offsets != nil {
				o = cur.Offsets[p]
			}
			if o < start {
				gap := &wailv1.RetentionGap{Partition: int32(p), From: o, To: start}
				if gapped != nil {
					if err := gapped(gap); err != nil {
						return nil, 0, nil, err
					}
				}
				gaps = append(gaps, gap)
			}
			offsets[p] = min(max(o, start), end)
		default:
			at := st.At
			if at.IsZero() {
				at = hlc.Time(st.AfterVersion).Add(-clockSkew)
			}
			if offsets[p], err = s.bus.log.OffsetForTime(ctx, topic, int32(p), at); err != nil {
				return nil, 0, nil, err
			}
		}
	}
	return offsets, st.AfterVersion, gaps, nil
}

// topicID returns the id of table's event topic now on a log whose
// topics have ids (Kafka); zero otherwise (the embedded log, a Kafka
// without them, a topic that does not exist: reading it fails next).
func (s *Service) topicID(ctx context.Context, table string) (intentlog.TopicID, error) {
	d, ok := s.bus.log.(intentlog.TopicIDDeleter)
	if !ok {
		return intentlog.TopicID{}, nil
	}
	topic := Topic(table)
	ids, err := d.TopicIDs(ctx, topic)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return intentlog.TopicID{}, nil
	case err != nil:
		return intentlog.TopicID{}, fmt.Errorf("eventbus: the id of %s: %w", topic, err)
	}
	return ids[topic], nil
}

// topicReplaced logs that a cursor (of a stream, or of a reset of group)
// is of an event topic that was deleted and created again since: it
// starts at the new topic's start.
func (s *Service) topicReplaced(table, group string, was, now uint64) {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	who, attrs := "event stream: ", []any{"table", table}
	if group != "" {
		who, attrs = "consumer group reset: ", append(attrs, "group", group)
	}
	l.Warn(who+"the cursor's event topic was deleted and created again behind wail's back, and its positions went with it; "+
		"it starts at the new topic's start, not at the cursor's offsets (the old topic's): every event of the new topic came after the cursor, "+
		"nothing is skipped",
		append(attrs, "topic", Topic(table), "was", fmt.Sprintf("%016x", was), "now", fmt.Sprintf("%016x", now),
			"action", "events of the deleted topic after the cursor are gone: run `wail table reconcile "+table+"`; "+
				"drop tables with `wail table drop` rather than deleting their topics by hand")...)
}

// sameTopic fails with intentlog.ErrUnknownTopic when r read a topic
// whose id is not id (zero: any), as a group member's reader does: the
// topic was deleted and created again after the stream read its id, and
// the reader's offsets are the old topic's. The stream ends before it
// sends any of those records; resumed from its last cursor (of the old
// topic), it starts at the new topic's start.
func sameTopic(r intentlog.Reader, id intentlog.TopicID) error {
	tr, ok := r.(intentlog.TopicIDReader)
	if !ok || id == (intentlog.TopicID{}) {
		return nil
	}
	if now := tr.TopicID(); now != (intentlog.TopicID{}) && now != id {
		return fmt.Errorf("%w: the event topic was deleted and created again behind wail's back since this stream started "+
			"(id %x, now %x): its offsets are the old topic's; resume from the last cursor, which starts at the new topic's start",
			intentlog.ErrUnknownTopic, id[:], now[:])
	}
	return nil
}

func unknownTable(table string) error {
	if len(table) > maxQuoted {
		return notFound(fmt.Errorf("table %s does not exist", quoted(table)))
	}
	if err := store.ValidateTableName(table); err != nil { // no table can have it: creating one would fail
		return notFound(fmt.Errorf("table %q does not exist: %w", table, err))
	}
	return notFound(fmt.Errorf("table %q does not exist: create it with `wail table create %s`", table, table))
}
