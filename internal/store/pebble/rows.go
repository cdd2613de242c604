package pebble

import (
	"bytes"
	"cmp"
	"slices"

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
// The cache is exact: a row is cached under the stripe, together with its
// batch's flight and just before the batch is applied to Pebble (a Get
// that finds it waits for the flight, which lands only once the batch is
// durable; without fsync, right after the batch was applied), and every
// applied write of a key replaces or removes (when its value does not fit)
// the key's entry, so an entry is always the newest row Pebble holds, or
// will hold once its flight lands. A
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

func rowSize(rowKey string, r cachedRow) int { return len(rowKey) + len(r.value) + rowOverhead }

// rowsOf returns the rows to cache for the winners, indexed like winners
// (nil when the cache is off): done before the stripes are taken, since
// it copies every value.
func (s *Store) rowsOf(muts []store.Mutation, winners []pending) []cachedRow {
	if s.rowLimit == 0 {
		return nil
	}
	rows := make([]cachedRow, len(winners))
	for i, p := range winners {
		m := &muts[p.idx]
		r := cachedRow{version: m.Version, deleted: m.Delete}
		if !m.Delete {
			r.schemaID = m.SchemaID
			r.value = bytes.Clone(m.Value)
			if r.value == nil {
				r.value = []byte{}
			}
		}
		rows[i] = r
	}
	return rows
}

// track records, for the winners that were applied, the batch's flight f
// (nil: none, the store does not sync) and their rows (rows from rowsOf,
// nil: none), taking each stripe's flightsMu once for all its winners
// (order from groupByStripe). The caller holds their stripes.
func (s *Store) track(f *flight, winners []pending, order []int32, rows []cachedRow, out []store.Outcome) {
	if f == nil && rows == nil {
		return
	}
	for i := 0; i < len(order); {
		st := &s.stripes[winners[order[i]].stripe]
		st.flightsMu.Lock()
		for ; i < len(order) && &s.stripes[winners[order[i]].stripe] == st; i++ {
			w := order[i]
			p := &winners[w]
			if !out[p.idx].Applied {
				continue
			}
			if f != nil {
				if st.flights == nil {
					st.flights = map[string]*flight{}
				}
				st.flights[p.key] = f
			}
			if rows != nil {
				s.putRowLocked(st, p.key, rows[w])
			}
		}
		st.flightsMu.Unlock()
	}
}

// putRow replaces rowKey's entry with r, or removes it when r does not fit.
func (s *Store) putRow(stripe uint32, rowKey string, r cachedRow) {
	st := &s.stripes[stripe]
	st.flightsMu.Lock()
	defer st.flightsMu.Unlock()
	s.putRowLocked(st, rowKey, r)
}

// putRowLocked is putRow with st.flightsMu held.
func (s *Store) putRowLocked(st *stripe, rowKey string, r cachedRow) {
	old, had := st.rows[rowKey]
	if had {
		st.rowBytes -= rowSize(rowKey, old)
	}
	size := rowSize(rowKey, r)
	if size > s.rowLimit {
		if had {
			delete(st.rows, rowKey)
		}
		return
	}
	for k, o := range st.rows {
		if st.rowBytes+size <= s.rowLimit {
			break
		}
		if k == rowKey {
			continue // replaced below; its bytes are already out
		}
		st.rowBytes -= rowSize(k, o)
		delete(st.rows, k)
	}
	if st.rows == nil {
		st.rows = make(map[string]cachedRow)
	}
	st.rows[rowKey] = r // replaces the old entry in place
	st.rowBytes += size
}

// rowAndFlight is a key's cached row, if any (ok), and the flight of the
// latest batch that wrote it, read together.
type rowAndFlight struct {
	row cachedRow
	ok  bool
	f   *flight
}

// cachedRowAndFlight returns rowKey's cached row and flight.
func (s *Store) cachedRowAndFlight(rowKey []byte) rowAndFlight {
	st := &s.stripes[s.stripeOf(rowKey)]
	st.flightsMu.Lock()
	defer st.flightsMu.Unlock()
	return st.lookup(rowKey)
}

// lookup reads rowKey's cached row and flight; the caller holds flightsMu.
func (st *stripe) lookup(rowKey []byte) rowAndFlight {
	r, ok := st.rows[string(rowKey)]
	return rowAndFlight{row: r, ok: ok, f: st.flights[string(rowKey)]}
}

// cachedRowsAndFlights is cachedRowAndFlight of each of rowKeys, taking
// each stripe's flightsMu once.
func (s *Store) cachedRowsAndFlights(rowKeys [][]byte) []rowAndFlight {
	out := make([]rowAndFlight, len(rowKeys))
	if len(rowKeys) == 1 {
		out[0] = s.cachedRowAndFlight(rowKeys[0])
		return out
	}
	type keyStripe struct{ i, stripe uint32 }
	order := make([]keyStripe, len(rowKeys))
	for i, rk := range rowKeys {
		order[i] = keyStripe{uint32(i), s.stripeOf(rk)}
	}
	slices.SortFunc(order, func(a, b keyStripe) int { return cmp.Compare(a.stripe, b.stripe) })
	for j := 0; j < len(order); {
		st := &s.stripes[order[j].stripe]
		st.flightsMu.Lock()
		for stripe := order[j].stripe; j < len(order) && order[j].stripe == stripe; j++ {
			out[order[j].i] = st.lookup(rowKeys[order[j].i])
		}
		st.flightsMu.Unlock()
	}
	return out
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
