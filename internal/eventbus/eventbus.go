// Package eventbus is where final change events go: one topic per table on
// an intentlog.Log (the same log code as the intent log), keyed by row key so
// that every key's events are totally ordered on one partition, replayable by
// any number of subscribers.
//
// Record format: key = row key; value = wail.v1.ChangeEvent (proto binary,
// see api/wail/v1/wail.proto); headers wail.version (decimal), wail.op
// (UPSERT|DELETE) and wail.event_id, so tools that do not speak protobuf can
// still read what changed, and traceparent (W3C) when the event is traced.
// Every DELETE event is followed by a tombstone: the same key with a nil
// value and no headers. Typed tables' events are in the Confluent wire
// format instead, the row state itself with the metadata in headers, and
// the key too when the table has a key type, placed by the row key all
// the same (typed.go); Decode reads both.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Header names on every event record.
const (
	HeaderVersion = "wail.version"
	HeaderOp      = "wail.op"
	HeaderEventID = "wail.event_id"
	// HeaderTrace is the event's W3C traceparent, only on traced events.
	HeaderTrace = "traceparent"
)

// ErrEncode: an event that cannot be encoded (it can never be published).
var ErrEncode = errors.New("eventbus: event cannot be encoded")

// Topic is the event topic of a table.
func Topic(table string) string { return "wail.events." + table }

// Bus publishes and reads final events.
type Bus struct {
	log   intentlog.Log
	typer Typer // nil: every event in wail's envelope
}

// New returns a bus on a log.
func New(log intentlog.Log) *Bus { return &Bus{log: log} }

// Log returns the log under the bus.
func (b *Bus) Log() intentlog.Log { return b.log }

// CreateTable creates a table's event topic.
func (b *Bus) CreateTable(ctx context.Context, table string, partitions int32, retention time.Duration) error {
	return b.CreateTableFor(ctx, table, partitions, retention, "")
}

// CreateTableFor is CreateTable, the topic made for owner
// (intentlog.TopicOptions.Owner; empty: none).
func (b *Bus) CreateTableFor(ctx context.Context, table string, partitions int32, retention time.Duration, owner string) error {
	err := b.log.CreateTopic(ctx, Topic(table), partitions, intentlog.TopicOptions{Retention: retention, Compact: true, Owner: owner})
	if err != nil {
		return fmt.Errorf("eventbus: create %s: %w", table, err)
	}
	return nil
}

// Publish appends events durably, in order. Events of one key must be
// published in version order by a single caller (the resolver of the key's
// partition); the bus keeps that order. A delete event is followed by a
// tombstone (the key with a nil value), so that a compacted topic (Kafka)
// can drop the key; readers skip tombstones.
func (b *Bus) Publish(ctx context.Context, table string, events []intent.Event) error {
	topic, recs, err := b.Records(ctx, table, events)
	if err == nil {
		err = b.log.Append(ctx, topic, recs)
	}
	if err != nil {
		return fmt.Errorf("eventbus: publish %s: %w", table, err)
	}
	return nil
}

// Records returns the topic and the records that publish events: each
// event's record, and a tombstone after each delete in wail's envelope
// (a typed table's delete is one: typed.go). A caller that appends them
// itself (the resolver, inside a Kafka transaction) publishes exactly
// what Publish would. A typed event gets the schema id it is published
// under (its SchemaID); an error wrapping ErrEncode is an event that can
// never be published.
func (b *Bus) Records(ctx context.Context, table string, events []intent.Event) (string, []*intentlog.Record, error) {
	var types EventTypes
	typed := false
	if b.typer != nil {
		var err error
		if types, typed, err = b.typer.EventTypes(ctx, table); err != nil {
			return "", nil, fmt.Errorf("eventbus: the types of %s: %w", table, err)
		}
	}
	recs := make([]*intentlog.Record, 0, len(events))
	for i := range events {
		if typed {
			r, err := encodeTyped(ctx, &events[i], types)
			if err != nil {
				return "", nil, err
			}
			recs = append(recs, r)
			continue
		}
		r, err := Encode(&events[i])
		if err != nil {
			return "", nil, err
		}
		recs = append(recs, r)
		if events[i].Op == intent.Delete {
			recs = append(recs, &intentlog.Record{Key: events[i].Key})
		}
	}
	return Topic(table), recs, nil
}

// Encode turns an event into its log record. It fails with ErrEncode.
func Encode(e *intent.Event) (*intentlog.Record, error) {
	v, id, err := e.MarshalID()
	if err != nil {
		return nil, fmt.Errorf("%w: key %q version %d: %w", ErrEncode, e.Key, e.Version, err)
	}
	rec := &intentlog.Record{
		Key:   e.Key,
		Value: v,
		Headers: []intentlog.Header{
			{Key: HeaderVersion, Value: strconv.AppendUint(nil, e.Version, 10)},
			{Key: HeaderOp, Value: []byte(e.Op.String())},
			{Key: HeaderEventID, Value: id}, // inside v: both are the record's, never changed
		},
	}
	if e.Trace != "" {
		rec.Headers = append(rec.Headers, intentlog.Header{Key: HeaderTrace, Value: []byte(e.Trace)})
	}
	return rec, nil
}

// Size returns an upper bound of the bytes the records that publish e (its
// record, and a tombstone after a delete; see Records) take in a log's
// record batch, each with its framing (intentlog.FramedSize): what counts
// against a log's limit of one append, in either form (wail's envelope or
// a typed table's). It does not encode the value.
func Size(e *intent.Event) int {
	return max(envelopeSize(e), typedSize(e))
}

func envelopeSize(e *intent.Event) int {
	version, op, id := [2]int{len(HeaderVersion), decimalLen(e.Version)},
		[2]int{len(HeaderOp), len(e.Op.String())},
		[2]int{len(HeaderEventID), intent.EventIDLen(e.Table, e.Key, e.Version)}
	var n int
	if e.Trace != "" {
		n = intentlog.FramedSize(len(e.Key), e.Size(), version, op, id, [2]int{len(HeaderTrace), len(e.Trace)})
	} else {
		n = intentlog.FramedSize(len(e.Key), e.Size(), version, op, id)
	}
	if e.Op == intent.Delete {
		n += intentlog.FramedSize(len(e.Key), 0)
	}
	return n
}

// LastVersions scans a partition from the first event published at or after
// since to the end and returns each key's highest version: what the resolver
// needs after a restart to never publish a version twice. On Kafka the end
// is the high watermark, so the scan also waits until every transaction
// already on the partition committed or aborted: a previous owner's last
// transaction can still be writing its markers when the new owner starts.
func (b *Bus) LastVersions(ctx context.Context, table string, partition int32, since time.Time) (map[string]uint64, error) {
	rec, err := b.scan(ctx, table, partition, since, false, RecoverWaits{})
	return rec.Last, err
}

// Recovered is what a new owner of a bus partition learns from it.
type Recovered struct {
	// Last is each key's highest published version.
	Last map[string]uint64
	// Orphans and Unblock are set when hanging transactions (see
	// intentlog.Hanging) held the partition. Orphans are their events whose
	// versions are above Last, in order: readers never saw them, yet their
	// transactions may have committed the offsets of their intents. The
	// owner makes their keys resolve again (durably: it logs new intents
	// for them), then calls Unblock, which aborts the hanging transactions
	// so that readers get past them. It must not publish to the partition
	// before: a hang's producer may be its own, and a record of that
	// producer there would join the hanging transaction.
	Orphans []intent.Event
	Unblock func(ctx context.Context) error
}

// RecoverWaits bound a Recover (a zero field: no bound). A scan of a big
// partition is work that may take long, so it has no total bound: one that
// keeps reading goes on, one that reads nothing for Stall fails.
type RecoverWaits struct {
	// Call bounds each question Recover asks the log before it reads: the
	// offset of since, the partition's bounds.
	Call time.Duration
	// Stall fails the scan with ErrStalled once it read nothing for that
	// long. Keep it well above the time after which the log counts a
	// silent transaction as hanging (Kafka: 30 s), plus stallCheck: below
	// it, a hang that Recover would end fails the scan instead.
	Stall time.Duration
}

// Recover is LastVersions for the partition's owner, bounded by w. When
// the partition is held by hanging transactions (a Kafka broker lost their
// markers), it reads past them and returns what to do about them.
func (b *Bus) Recover(ctx context.Context, table string, partition int32, since time.Time, w RecoverWaits) (Recovered, error) {
	return b.scan(ctx, table, partition, since, true, w)
}

// unhanger is a log on which transactions can hang: Kafka.
type unhanger interface {
	Unhang(ctx context.Context, topic string, partition int32, from, end int64) (*intentlog.Hanging, error)
}

// stabler is a log whose read_committed readers stop at a stable offset
// below the end while a transaction is open: Kafka.
type stabler interface {
	StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error)
}

// Hanging reports whether a hanging transaction holds a partition of a
// table's events (see Recover): its stable offset is below its end, and
// the log finds a hanging transaction there. It ends none: the
// partition's owner starts it again, and Recover logs the keys' intents
// again before it aborts them. Always false on a log where transactions
// cannot hang (embedded). The owner asks it while it runs: a hang its own
// producers do not end (they publish nothing more there) would hold every
// consumer of the partition until the next take-over.
func (b *Bus) Hanging(ctx context.Context, table string, partition int32) (bool, error) {
	un, ok := b.log.(unhanger)
	st, ok2 := b.log.(stabler)
	if !ok || !ok2 {
		return false, nil
	}
	topic := Topic(table)
	stable, end, err := st.StableEnd(ctx, topic, partition)
	if err != nil || stable >= end {
		return false, wrapScan(table, partition, err)
	}
	h, err := un.Unhang(ctx, topic, partition, stable, end)
	// A hang whose marker came while the log read past it has no
	// records left: it ended.
	return h != nil && len(h.Records) > 0, wrapScan(table, partition, err)
}

// stallCheck is how long a scan waits for records before it asks the log
// about hanging transactions (the log decides which are); a variable for
// tests.
var stallCheck = 5 * time.Second

// Retained is what a whole-partition scan found (see LastVersionsOf).
type Retained struct {
	// Last is the highest version of each key asked for that has an
	// event on the partition.
	Last map[string]uint64
	// Start is the partition's first retained offset (above 0 once
	// retention removed records); End is where the scan ended.
	Start, End int64
	// FirstAt is the append time of the first record read (zero when
	// none was): scanned from the start, events published before it may
	// be gone.
	FirstAt time.Time
}

// ErrStalled: a scan got no record for too long (a transaction on the
// partition that does not end: a hanging one, see DESIGN.md).
var ErrStalled = errors.New("the partition does not advance")

// stallLimit bounds how long LastVersionsOf waits for records that do not
// come (a variable for tests).
var stallLimit = 30 * time.Second

// LastVersionsOf scans a partition from offset from (the first retained
// record when below it) to its end when the scan starts, and returns the
// highest version of each key that want accepts (nil: every key), so the
// memory it takes is bounded by the keys wanted. On Kafka it reads
// committed records only and waits out open transactions, as LastVersions
// does, but for 30 s at most (ErrStalled).
func (b *Bus) LastVersionsOf(ctx context.Context, table string, partition int32, from int64, want func(key []byte) bool) (Retained, error) {
	start, end, err := b.log.Bounds(ctx, Topic(table), partition)
	if err != nil {
		return Retained{}, wrapScan(table, partition, err)
	}
	ret := Retained{Start: start, End: end}
	rec, err := b.scanRange(ctx, table, partition, max(from, start), end, false, stallLimit, func(r *intentlog.Record) bool {
		if ret.FirstAt.IsZero() {
			ret.FirstAt = r.Timestamp
		}
		return want == nil || want(RowKey(r))
	})
	ret.Last = rec.Last
	return ret, err
}

// End returns the offset the next event of a partition will get.
func (b *Bus) End(ctx context.Context, table string, partition int32) (int64, error) {
	_, end, err := b.log.Bounds(ctx, Topic(table), partition)
	if err != nil {
		return 0, wrapScan(table, partition, err)
	}
	return end, nil
}

// ends returns the end offset of every partition of a table's events.
func (b *Bus) ends(ctx context.Context, table string, n int32) ([]int64, error) {
	return b.endsOf(ctx, Topic(table), n)
}

// endsOf returns the end offset of every partition of a topic.
func (b *Bus) endsOf(ctx context.Context, topic string, n int32) ([]int64, error) {
	out := make([]int64, n)
	for p := range out {
		_, end, err := b.log.Bounds(ctx, topic, int32(p))
		if err != nil {
			return nil, fmt.Errorf("eventbus: bounds of %s/%d: %w", topic, p, err)
		}
		out[p] = end
	}
	return out, nil
}

func (b *Bus) scan(ctx context.Context, table string, partition int32, since time.Time, heal bool, w RecoverWaits) (Recovered, error) {
	topic := Topic(table)
	from, err := within(ctx, w.Call, func(ctx context.Context) (int64, error) {
		return b.log.OffsetForTime(ctx, topic, partition, since)
	})
	if err != nil {
		return Recovered{Last: map[string]uint64{}}, wrapScan(table, partition, err)
	}
	end, err := within(ctx, w.Call, func(ctx context.Context) (int64, error) {
		_, end, err := b.log.Bounds(ctx, topic, partition)
		return end, err
	})
	if err != nil {
		return Recovered{Last: map[string]uint64{}}, wrapScan(table, partition, err)
	}
	return b.scanRange(ctx, table, partition, from, end, heal, w.Stall, nil)
}

// within runs a question to the log for wait at most (0: no bound). Cut
// off by its bound (not by ctx), its error says so.
func within[T any](ctx context.Context, wait time.Duration, ask func(context.Context) (T, error)) (T, error) {
	if wait <= 0 {
		return ask(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := ask(wctx)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return v, fmt.Errorf("no answer within %s: %w", wait, err)
	}
	return v, err
}

// scanRange reads [from, end) of a partition into Last, counting only the
// records that want accepts (nil: all). Without records for stall (0: no
// bound), it fails with ErrStalled; only a read that moves the scan on
// counts, however long the whole scan takes. Healing, a hang found before
// then is returned (see Recovered); without a bound, hangs are healed or
// waited out.
func (b *Bus) scanRange(ctx context.Context, table string, partition int32, from, end int64, heal bool, stall time.Duration, want func(*intentlog.Record) bool) (Recovered, error) {
	rec := Recovered{Last: map[string]uint64{}}
	topic := Topic(table)
	un, _ := b.log.(unhanger)
	if !heal {
		un = nil
	}
	if from >= end {
		if un != nil { // nothing to scan, but a hang before from still holds subscribers
			return rec.unhang(ctx, un, topic, partition, end, end)
		}
		return rec, nil
	}
	r, err := b.log.NewReader(topic, partition, from)
	if err != nil {
		return rec, wrapScan(table, partition, err)
	}
	defer r.Close()
	progress := time.Now()
	for r.Position() < end {
		wait := stallCheck
		if stall > 0 {
			wait = min(wait, max(time.Until(progress.Add(stall)), time.Millisecond))
		}
		pos := r.Position()
		nctx, cancel := context.WithTimeout(ctx, wait)
		recs, err := r.Next(nctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			if stall > 0 && time.Since(progress) >= stall {
				return rec, fmt.Errorf("eventbus: scan %s/%d: %w past offset %d for %s (a transaction that does not end?)",
					table, partition, ErrStalled, r.Position(), stall)
			}
			if un == nil {
				continue // a transaction that has yet to end
			}
			if rec, err = rec.unhang(ctx, un, topic, partition, r.Position(), end); err != nil || rec.Unblock != nil {
				return rec, err
			}
			continue
		}
		if err != nil {
			return rec, fmt.Errorf("eventbus: scan %s/%d at %d: %w", table, partition, r.Position(), err)
		}
		if r.Position() > pos {
			progress = time.Now()
		}
		if want != nil {
			recs = slices.DeleteFunc(recs, func(r intentlog.Record) bool { return !want(&r) })
		}
		rec.add(recs)
	}
	return rec, nil
}

// unhang asks the log about hanging transactions; when there are, it
// completes rec from what the log read past them.
func (rec Recovered) unhang(ctx context.Context, un unhanger, topic string, partition int32, from, end int64) (Recovered, error) {
	h, err := un.Unhang(ctx, topic, partition, from, end)
	if err != nil || h == nil {
		return rec, wrapScan(topic, partition, err)
	}
	rec.add(h.Committed)
	rec.Orphans = orphanEvents(h.Records, rec.Last)
	rec.Unblock = h.Abort
	return rec, nil
}

// add counts the events of recs in Last.
func (rec *Recovered) add(recs []intentlog.Record) {
	for i := range recs {
		if e, ok := decodeEvent(&recs[i]); ok && e.Version > rec.Last[string(e.Key)] {
			rec.Last[string(e.Key)] = e.Version
		}
	}
}

// orphanEvents decodes the events of aborted records whose versions are
// above last, keeping one per key and version, in order.
func orphanEvents(recs []intentlog.Record, last map[string]uint64) []intent.Event {
	var out []intent.Event
	seen := map[string]uint64{}
	for i := range recs {
		e, ok := decodeEvent(&recs[i])
		if !ok {
			continue
		}
		k := string(e.Key)
		if e.Version > last[k] && e.Version > seen[k] {
			seen[k] = e.Version
			out = append(out, e)
		}
	}
	return out
}

// decodeEvent decodes an event record; tombstones and records that are not
// events are skipped (not ours to judge here; subscribers report them).
func decodeEvent(r *intentlog.Record) (intent.Event, bool) {
	e, ok, err := Decode(r)
	return e, ok && err == nil
}

func wrapScan(table string, partition int32, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("eventbus: scan %s/%d: %w", table, partition, err)
}
