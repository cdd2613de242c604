package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// Bytes of a write (DESIGN.md, "Merged writes"). A Write is bounded by
// its mutations' count (MaxBatch) and the API by its request's size, but
// what matters to the log and the store is the bytes of one append and
// of one store write. A table's mutations of one Write go as one append:
// if their intents exceed what the intent log takes in one (Intents), the
// Write is refused for that table before it is stamped, ErrInvalid naming
// the limit. (Split into several appends, a failure between them would
// leave some intents logged and others not, and the store write would
// wait for all of them: one append per batch keeps "all intents durable
// before the store is written" a single step; a client that needs more
// sends several Writes.) A merged batch adds queued writes only while
// their intents stay within that bound and their rows within
// MaxMergeBytes: the first write of a batch always goes (it was checked
// alone), so merging never fails a write that alone would succeed.

// DefaultMaxMergeBytes is Limits.MaxMergeBytes when unset: twice the
// default request cap of a Write (api.max_write_request_bytes).
const DefaultMaxMergeBytes = 64 << 20

// size is what a write of one table takes: the bound of its intents'
// records, as the log counts them, and of its rows.
type size struct{ intents, rows int }

func (s size) plus(o size) size { return size{s.intents + o.intents, s.rows + o.rows} }

// rowSlack bounds what a store adds to a row's key, value and document
// (version, flags, schema id, lengths).
const rowSlack = 64

// intentFixed bounds the record of an intent of table with an empty key:
// the intent encoded at its widest (version, proxy id and time as
// 10-byte varints, the longest id, a trace), and the record's varints
// around it (key, value, timestamp delta, header count).
func intentFixed(table string) int {
	in := intent.Intent{
		Table: table, Op: intent.Abort, Version: math.MaxUint64, ProxyID: math.MaxUint32,
		CreatedAt: time.UnixMicro(-1), PublishedFloor: math.MaxUint64, Trace: intent.WidestTrace,
		ID: fmt.Sprintf("%d-%d-abort", uint64(math.MaxUint32), uint64(math.MaxUint64)),
	}
	b, _, err := in.MarshalKeyed()
	if err != nil { // only for invalid UTF-8 in the table name, which is validated
		return math.MaxInt32
	}
	return len(b) + 1 + 5*binary.MaxVarintLen64 // key: tag, length; record: 4 varints
}

// intentFixedOf is intentFixed(table), computed once per table name (a
// Write would otherwise encode an intent for it: 0.4µs and two
// allocations on every write).
func (p *Proxy) intentFixedOf(table string) int {
	if n, ok := p.fixed.Load(table); ok {
		return n.(int)
	}
	n := intentFixed(table)
	p.fixed.Store(table, n)
	return n
}

// sizeOf returns the size of the mutations idx of muts, to a table whose
// intents take fixed bytes with an empty key (intentFixed).
func sizeOf(fixed int, muts []Mutation, idx []int) size {
	var s size
	for _, i := range idx {
		m := &muts[i]
		s.intents += fixed + 2*len(m.Key) // the record's key, and the key in its value
		s.rows += len(m.Key) + len(m.Doc) + rowSlack
		if !m.Delete {
			s.rows += len(m.Value)
		}
	}
	return s
}

// appendLimit returns the most bytes of intents one append to table's
// intent topic takes (0: no bound).
func (p *Proxy) appendLimit(ctx context.Context, table string) (int, error) {
	if p.limits.Intents == nil {
		return 0, nil
	}
	n, err := p.limits.Intents.AppendLimit(ctx, intent.Topic(table))
	if err != nil {
		return 0, fmt.Errorf("%w: cannot learn how large an append the intent log takes: %v", ErrUnavailable, err)
	}
	return n, nil
}

// fitsAppend refuses a write of table of size s whose intents do not fit
// one append of the intent log.
func (p *Proxy) fitsAppend(ctx context.Context, table string, s size, n int) (limit int, err error) {
	limit, err = p.appendLimit(ctx, table)
	if err != nil || limit == 0 || s.intents <= limit {
		return limit, err
	}
	return limit, fmt.Errorf("%w: the %d mutations of table %s in this write take up to %d bytes of intents (about twice their keys' bytes); "+
		"the intent log takes at most %d bytes in one append, and a write's mutations of a table go in one append: "+
		"send them in smaller writes (fewer mutations, or shorter keys)", ErrInvalid, n, table, s.intents, limit)
}

// maxMergeBytes is the most bytes of rows a merged batch gathers.
func (p *Proxy) maxMergeBytes() int {
	if p.limits.MaxMergeBytes > 0 {
		return p.limits.MaxMergeBytes
	}
	return DefaultMaxMergeBytes
}
