package pebble

import (
	"bytes"

	"github.com/wail-cdc/wail/internal/store"
)

// Rows in memory.
//
// The resolver reads back every row right after it was written. Each
// stripe keeps the rows its keys were last written with, so that Get finds
// them without a Pebble read. A cached row is served exactly as a row read
// from Pebble is (durable.go): Get reads the row and its key's flight
// together, under the stripe's flightsMu, and waits for the flight before
// it answers, so it never returns a row that is not durable.
//
// The cache is exact: a row is cached under the stripe, right after its
// batch was applied to Pebble (after its flight was registered), and every
// applied write of a key replaces or removes (when its value does not fit)
// the key's entry, so an entry is always the newest row Pebble holds. A
// Pebble read never fills the cache (it could race with a write and cache
// an older row than Pebble holds). DropTable empties it; Open starts it
// empty. Each stripe holds at most Options.RowCacheBytes/256 bytes (key,
// value and rowOverhead each); a row that does not fit evicts arbitrary
// others of the stripe.

// defaultRowCacheBytes bounds the cached rows by default.
const defaultRowCacheBytes = 32 << 20

// rowOverhead is what an entry costs besides its key and value bytes.
const rowOverhead = 64

// cachedRow is a row as Pebble holds it.
type cachedRow struct {
	version uint64
	deleted bool
	value   []byte // never nil for a live row
	// schemaID of a live row (store.Row.SchemaID)
	schemaID uint32
}

func rowSize(rowKey []byte, r cachedRow) int { return len(rowKey) + len(r.value) + rowOverhead }

// rememberRows caches the rows of the winners that were applied. The
// caller holds their stripes (not their flightsMu).
func (s *Store) rememberRows(muts []store.Mutation, winners []pending, out []store.Outcome) {
	if s.rowLimit == 0 {
		return
	}
	for _, p := range winners {
		if !out[p.idx].Applied {
			continue
		}
		m := &muts[p.idx]
		r := cachedRow{version: m.Version, deleted: m.Delete}
		if !m.Delete {
			r.schemaID = m.SchemaID
			r.value = bytes.Clone(m.Value)
			if r.value == nil {
				r.value = []byte{}
			}
		}
		s.putRow(p.stripe, p.rowKey, r)
	}
}

// putRow replaces rowKey's entry with r, or removes it when r does not fit.
func (s *Store) putRow(stripe uint32, rowKey []byte, r cachedRow) {
	st := &s.stripes[stripe]
	st.flightsMu.Lock()
	defer st.flightsMu.Unlock()
	if old, ok := st.rows[string(rowKey)]; ok {
		st.rowBytes -= rowSize(rowKey, old)
		delete(st.rows, string(rowKey))
	}
	size := rowSize(rowKey, r)
	if size > s.rowLimit {
		return
	}
	for k, old := range st.rows {
		if st.rowBytes+size <= s.rowLimit {
			break
		}
		st.rowBytes -= rowSize([]byte(k), old)
		delete(st.rows, k)
	}
	if st.rows == nil {
		st.rows = make(map[string]cachedRow)
	}
	st.rows[string(rowKey)] = r
	st.rowBytes += size
}

// cachedRowAndFlight returns rowKey's cached row, if any, and the flight of
// the latest batch that wrote it, read together.
func (s *Store) cachedRowAndFlight(rowKey []byte) (cachedRow, bool, *flight) {
	st := &s.stripes[s.stripeOf(rowKey)]
	st.flightsMu.Lock()
	defer st.flightsMu.Unlock()
	r, ok := st.rows[string(rowKey)]
	return r, ok, st.flights[string(rowKey)]
}

// forgetRows empties the cache. The caller holds the lifetime lock
// exclusively (no Apply or Get runs).
func (s *Store) forgetRows() {
	for i := range s.stripes {
		s.stripes[i].rows, s.stripes[i].rowBytes = nil, 0
	}
}

// cachedRowBytes sums the cached rows' sizes (tests).
func (s *Store) cachedRowBytes() int {
	n := 0
	for i := range s.stripes {
		st := &s.stripes[i]
		st.flightsMu.Lock()
		n += st.rowBytes
		st.flightsMu.Unlock()
	}
	return n
}
