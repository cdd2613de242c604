package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// A log frames each record with a few varints: lengths of key, value and
// headers, a header count, timestamp and offset deltas, a record length,
// attributes. recordFields is how many a record has besides two per
// header, each at most binary.MaxVarintLen64 bytes.
const recordFields = 7

// fastSlack bounds what eventOverhead adds besides 6 bytes per key byte
// and 3 per table byte; TestEventOverheadBound checks it.
const fastSlack = 512

// cheapOverhead is an upper bound of eventOverhead that costs no
// encoding.
func cheapOverhead(table string, key []byte) int { return 6*len(key) + 3*len(table) + fastSlack }

// fitsBus refuses a mutation whose event could not be published: the
// event record (the value plus key, table, event id, headers and framing)
// would exceed the largest record the bus takes on the table's event
// topic. The check is exact only near the limit; below it a cheap upper
// bound of the envelope suffices.
func (p *Proxy) fitsBus(ctx context.Context, table string, m *Mutation) error {
	if p.limits.Bus == nil {
		return nil
	}
	limit, source, err := p.limits.Bus.RecordLimit(ctx, eventbus.Topic(table))
	if err != nil {
		return fmt.Errorf("%w: cannot learn how large an event the bus takes: %v", ErrUnavailable, err)
	}
	if len(m.Value)+cheapOverhead(table, m.Key) <= limit {
		return nil
	}
	overhead := eventOverhead(table, m.Key)
	if largest := limit - overhead; len(m.Value) > largest {
		return fmt.Errorf("%w: value is %d bytes; the largest value this key can take is %d bytes: "+
			"the event bus takes records of up to %d bytes (%s) and the event of this key adds up to %d bytes "+
			"(key, table, event id, headers, framing) to its value; keep large values elsewhere and write a reference",
			ErrInvalid, len(m.Value), max(largest, 0), limit, source, overhead)
	}
	return nil
}

// eventOverhead is an upper bound of what the event record of a write of
// key to table adds to its value: the record's key and headers, the
// ChangeEvent's fields other than the value at their widest (versions and
// times as 10-byte varints, counters as 5), the value's tag and length,
// and the log's framing.
func eventOverhead(table string, key []byte) int {
	e := intent.Event{
		Table: table, Key: key, Op: intent.Upsert, Version: math.MaxUint64,
		IntentAt: time.UnixMicro(-1), ResolvedAt: time.UnixMicro(-1), // negative: 10-byte varints
		CoveredIntents: math.MaxUint32, SchemaID: math.MaxUint32,
		Trace: intent.WidestTrace, // a traced event's field and header
	}
	rec, err := eventbus.Encode(&e)
	if err != nil { // only for invalid UTF-8 in the table name, which is validated
		return math.MaxInt32
	}
	n := len(rec.Key) + len(rec.Value) + 1 + binary.MaxVarintLen64 // value: tag, length
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value)
	}
	n += binary.MaxVarintLen64 * (recordFields + 2*len(rec.Headers))
	// A typed table's event (eventbus/typed.go: more headers, the key and
	// value framed) may take more for a short key.
	return max(n, eventbus.Size(&e)+binary.MaxVarintLen64)
}

// fitsStore refuses a mutation whose row, or document (a typed value's
// JSON, which a DocumentStore keeps too), the store would refuse for its
// size (store.MutationLimiter): without it, the write would be logged,
// refused by the store, aborted, and answered as unavailable, and every
// retry would go the same way.
func (p *Proxy) fitsStore(m *Mutation) error {
	l, ok := p.store.(store.MutationLimiter)
	if !ok {
		return nil
	}
	limit, source := l.MutationLimit()
	n := len(m.Key)
	if !m.Delete {
		n += len(m.Value)
	}
	if n > limit {
		return fmt.Errorf("%w: key and value are %d bytes; the store takes rows of at most %d bytes (%s): "+
			"keep large values elsewhere and write a reference, or lower limits.max_value_bytes to match", ErrInvalid, n, limit, source)
	}
	if len(m.Doc) > limit {
		return fmt.Errorf("%w: the value's JSON document is %d bytes; the store takes at most %d bytes (%s): "+
			"keep large values elsewhere and write a reference", ErrInvalid, len(m.Doc), limit, source)
	}
	return nil
}
