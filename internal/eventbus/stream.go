package eventbus

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
)

// streamCore decides what one Subscribe stream sends, without I/O: it
// keeps every partition's position (what cursors hold), ends an
// until-end stream once every partition reached its end, and during a
// snapshot keeps each key's versions increasing across rows read from the
// store and events read from the bus (see DESIGN.md, "Snapshot, then
// stream"). The stream's loop feeds it what the partition readers and
// the snapshot scan produce, in the order it processes them, and sends
// what it returns.
type streamCore struct {
	table string
	// pos is each partition's next offset: one past the last record
	// delivered or passed.
	pos []int64
	// until is each partition's end for an until-end stream (nil: follow
	// forever).
	until []int64
	// snap is the snapshot's state while one runs (nil: none, or over).
	snap *snapshotFilter
	// after: the stream skips events of this version or below (0: none);
	// its cursors carry it, created, the table's creation time, and
	// topic, the fingerprint of the event topic's id (TopicPrint).
	after   uint64
	created int64
	topic   uint64
}

// snapshotFilter keeps per-key versions increasing while a snapshot
// interleaves rows read from the store and events read from the bus. It
// holds the keys of the chunks in flight, and the keys that got an event
// during the snapshot (see DESIGN.md, "Snapshot, then stream"), at most
// maxKeys of them.
type snapshotFilter struct {
	// seen is the highest version delivered for each key held.
	seen    map[string]uint64
	maxKeys int
	// settling are the chunks whose rows were delivered, waiting for
	// every partition to reach their mark, in order.
	settling []settling
	// scanned is set once the scan delivered its last chunk.
	scanned bool
}

type settling struct {
	keys []string
	mark []int64
	done func() // called when the chunk is forgotten
}

// liveEvent is an event read from a partition, with its key and version.
type liveEvent struct {
	offset  int64
	event   *wailv1.ChangeEvent
	key     []byte
	version uint64
}

// newLiveEvent is a decoded event read at offset.
func newLiveEvent(offset int64, e *wailv1.ChangeEvent) liveEvent {
	return liveEvent{offset: offset, event: e, key: e.Key, version: e.Version}
}

// eventOverhead is what a queued event takes in memory besides the bytes
// of its fields: its ChangeEvent, its slot in its batch (twice: the slice
// grows by doubling) and the rounding of its fields' allocations.
const eventOverhead = int64(unsafe.Sizeof(wailv1.ChangeEvent{})) + 2*int64(unsafe.Sizeof(liveEvent{})) + 64

// memory is about what ev takes in the process's memory while it waits
// in a stream's queue, what the stream counts against its read-ahead
// budget: its fields (decoded) or its encoding (held as unknown fields),
// and eventOverhead. The bytes of its record alone were a third to a
// quarter of it for small events, so that streams whose clients read
// nothing held three to four times api.subscription_buffer_bytes (and
// api.max_subscription_buffered_bytes all together).
func (ev liveEvent) memory() int64 {
	e := ev.event
	return eventOverhead + int64(len(e.Table)+len(e.Key)+len(e.Value)+len(e.EventId)+len(e.Traceparent)+len(e.ProtoReflect().GetUnknown()))
}

// encodedLiveEvent is the event read at offset whose record value is
// exactly its encoding (intent.ScanEvent; ok is false for any other
// value): a ChangeEvent that holds a copy of that encoding (a log reader
// may reuse its buffers) as its unknown fields, which binary protobuf
// writes out as they are. Only for a stream whose messages are encoded as
// binary protobuf: any other encoding (protojson, a reader of the fields
// in the process) sees an empty event.
func encodedLiveEvent(offset int64, value []byte) (ev liveEvent, ok bool) {
	value = bytes.Clone(value)
	key, version, ok := intent.ScanEvent(value)
	if !ok {
		return liveEvent{}, false
	}
	e := &wailv1.ChangeEvent{}
	e.ProtoReflect().SetUnknown(value)
	return liveEvent{offset: offset, event: e, key: key, version: version}, true
}

// snapshotRow is a key's state as the snapshot read it from the store.
type snapshotRow struct {
	key     []byte
	value   []byte
	version uint64
	deleted bool
	// schemaID is the row's (store.Row.SchemaID): a typed row's schema,
	// as its event names it.
	schemaID uint32
}

// newStreamCore returns the core of a stream of table whose partitions
// start at start; until, if not nil, ends it there. snapshotKeys > 0 runs
// a snapshot first, whose filter holds at most that many keys.
func newStreamCore(table string, start, until []int64, snapshotKeys int) *streamCore {
	c := &streamCore{table: table, pos: append([]int64(nil), start...), until: until}
	if snapshotKeys > 0 {
		c.snap = &snapshotFilter{seen: map[string]uint64{}, maxKeys: snapshotKeys}
	}
	return c
}

// ErrSnapshotBusy: a snapshot's filter would hold more keys than allowed.
var ErrSnapshotBusy = errors.New("snapshot too busy")

// cursor returns the current cursor, or "" while a snapshot runs (a
// cursor taken then would not resume it).
func (c *streamCore) cursor() string {
	if c.snap != nil {
		return ""
	}
	return Cursor{Table: c.table, Offsets: c.pos, AfterVersion: c.after, Created: c.created, Topic: c.topic}.String()
}

// batch handles a batch of a partition reader (live, a rewind, or a
// retention gap).
func (c *streamCore) batch(b batch) ([]*wailv1.SubscribeResponse, error) {
	switch {
	case b.rewind:
		c.rewind(b.p, b.next)
		return nil, nil
	case b.gap != nil:
		return c.gap(b.gap, b.next), nil
	}
	return c.live(b.p, b.events, b.next)
}

// gap moves the position of gap's partition to next, past offsets that
// retention removed before the stream read them, and returns the message
// that tells the subscriber (with the cursor past them), then what the
// move settles.
func (c *streamCore) gap(gap *wailv1.RetentionGap, next int64) []*wailv1.SubscribeResponse {
	p := gap.Partition
	if c.until != nil {
		next = min(next, c.until[p])
	}
	c.pos[p] = max(c.pos[p], next)
	out := []*wailv1.SubscribeResponse{{Gap: gap, Cursor: c.cursor()}}
	return append(out, c.settle()...)
}

// rewind moves p's position back to next: the log lost what the stream
// read from there on and new events take those offsets again, which the
// stream delivers (as one resumed from a cursor past the log's end, which
// is clamped to it). A snapshot's chunks wait for p to reach next at
// most: the offsets past it they waited for are gone.
func (c *streamCore) rewind(p int32, next int64) {
	c.pos[p] = min(c.pos[p], next)
	if c.snap != nil {
		for _, st := range c.snap.settling {
			st.mark[p] = min(st.mark[p], next)
		}
	}
}

// live handles a batch read from partition p: its events, then the
// reader's position after it. It returns the responses to send.
func (c *streamCore) live(p int32, evs []liveEvent, next int64) ([]*wailv1.SubscribeResponse, error) {
	var out []*wailv1.SubscribeResponse
	end := int64(-1)
	if c.until != nil {
		end = c.until[p]
	}
	for _, e := range evs {
		if e.offset < c.pos[p] {
			continue // already passed (a reader that restarted below us)
		}
		if end >= 0 && e.offset >= end {
			break
		}
		c.pos[p] = e.offset + 1
		if c.snap != nil {
			if ok, err := c.snap.pass(e.key, e.version); err != nil || !ok {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		out = append(out, &wailv1.SubscribeResponse{Event: e.event, Partition: p, Offset: e.offset, Cursor: c.cursor()})
	}
	if end >= 0 {
		next = min(next, end)
	}
	c.pos[p] = max(c.pos[p], next)
	return append(out, c.settle()...), nil
}

// done reports whether an until-end stream reached the end of every
// partition.
func (c *streamCore) done() bool {
	if c.until == nil || c.snap != nil {
		return false
	}
	for p, e := range c.until {
		if c.pos[p] < e {
			return false
		}
	}
	return true
}

// rows handles rows read from the store: a row is delivered unless an
// event at or above its version already was. A tombstone holds older
// events back; it is delivered (as a DELETE) only when the stream already
// delivered an older state of the key, which it must then replace: a
// consumer that starts with the snapshot has nothing of the other deleted
// keys.
func (c *streamCore) rows(rows []snapshotRow) ([]*wailv1.SubscribeResponse, error) {
	var out []*wailv1.SubscribeResponse
	for _, r := range rows {
		_, had := c.snap.seen[string(r.key)]
		ok, err := c.snap.pass(r.key, r.version)
		if err != nil {
			return nil, err
		}
		if !ok || (r.deleted && !had) {
			continue
		}
		ev := &wailv1.ChangeEvent{Table: c.table, Key: r.key, Op: wailv1.Op_OP_UPSERT, Version: r.version, Value: r.value,
			EventId: intent.EventID(c.table, r.key, r.version), SchemaId: r.schemaID}
		if r.deleted {
			ev.Op, ev.Value = wailv1.Op_OP_DELETE, nil
		}
		out = append(out, &wailv1.SubscribeResponse{Snapshot: true, Event: ev})
	}
	return out, nil
}

// settled queues the forgetting of a chunk's keys once every partition's
// position reached mark: from there on the bus holds, for each of them,
// no event at or below the version its row had (see DESIGN.md). done is
// called when they are forgotten.
func (c *streamCore) settled(keys []string, mark []int64, done func()) []*wailv1.SubscribeResponse {
	c.snap.settling = append(c.snap.settling, settling{keys: keys, mark: mark, done: done})
	return c.settle()
}

// scanned records that the snapshot's scan is over (every chunk was
// passed to settled).
func (c *streamCore) scanned() []*wailv1.SubscribeResponse {
	c.snap.scanned = true
	return c.settle()
}

// settle forgets the chunks whose marks every partition reached. When
// the snapshot is over, it returns a message with the stream's first
// cursor.
func (c *streamCore) settle() []*wailv1.SubscribeResponse {
	s := c.snap
	if s == nil {
		return nil
	}
	for len(s.settling) > 0 && reached(c.pos, s.settling[0].mark) {
		for _, k := range s.settling[0].keys {
			delete(s.seen, k)
		}
		if s.settling[0].done != nil {
			s.settling[0].done()
		}
		s.settling = s.settling[1:]
	}
	if !s.scanned || len(s.settling) > 0 {
		return nil
	}
	c.snap = nil
	return []*wailv1.SubscribeResponse{{Cursor: c.cursor()}}
}

func reached(pos, mark []int64) bool {
	for p := range mark {
		if pos[p] < mark[p] {
			return false
		}
	}
	return true
}

// pass reports whether version v of key may be delivered (it is above
// everything delivered for the key that the filter holds), and records
// it. It fails with ErrSnapshotBusy when the filter is full.
func (s *snapshotFilter) pass(key []byte, v uint64) (bool, error) {
	seen, ok := s.seen[string(key)]
	if ok && v <= seen {
		return false, nil
	}
	if !ok && len(s.seen) >= s.maxKeys {
		return false, fmt.Errorf("%w: %d keys changed or are being read during the snapshot, the most a stream holds "+
			"(api.snapshot_max_keys): retry when writes are fewer, or raise it", ErrSnapshotBusy, len(s.seen))
	}
	s.seen[string(key)] = v
	return true, nil
}
