// Package landing tracks the store writes in flight in this process, so
// that the resolver running next to the proxy can hold the read of an
// intent until the store write of its version has landed, instead of
// reading too early, finding the old row and reading again.
//
// The proxy begins a Write, with the range of versions it stamped, before
// it appends their intents (so the resolver cannot see an intent before
// its write is known here) and ends it once the store write returned,
// whatever it did. The resolver asks Pending for the version its read
// must find. Nothing here decides what is published: a held read is only
// a later read, so the invariants do not depend on it; intents of another
// process (other proxies on Kafka) are simply not known here and are read
// as before.
package landing

import "sync"

// Writes is the set of store writes in flight, by table. The zero value
// is not usable; a nil *Writes tracks nothing (Begin returns a nil Write,
// Pending returns nil). Safe for concurrent use.
type Writes struct {
	mu     sync.Mutex
	tables map[string][]*Write // in the order they began
}

// Write is one store write in flight: versions lo..hi of a table.
type Write struct {
	ws     *Writes
	table  string
	lo, hi uint64
	done   chan struct{}
	once   sync.Once
}

// New returns an empty set.
func New() *Writes { return &Writes{tables: map[string][]*Write{}} }

// Begin records a store write of versions lo..hi (inclusive) of table; end
// it with End. Versions of other writes may fall inside the range (writes
// stamped at the same time interleave): Pending then waits for both, which
// only makes a read later.
func (ws *Writes) Begin(table string, lo, hi uint64) *Write {
	if ws == nil {
		return nil
	}
	w := &Write{ws: ws, table: table, lo: min(lo, hi), hi: max(lo, hi), done: make(chan struct{})}
	ws.mu.Lock()
	ws.tables[table] = append(ws.tables[table], w)
	ws.mu.Unlock()
	return w
}

// End marks the write over (landed, failed or abandoned); idempotent.
func (w *Write) End() {
	if w == nil {
		return
	}
	w.once.Do(func() {
		ws := w.ws
		ws.mu.Lock()
		list := ws.tables[w.table]
		for i, x := range list {
			if x == w {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(ws.tables, w.table)
		} else {
			ws.tables[w.table] = list
		}
		ws.mu.Unlock()
		close(w.done)
	})
}

// Pending returns a channel closed when the earliest write in flight of
// table whose range holds version ends, or nil when no write in flight
// holds it. Once the channel closes, ask again: another write may hold
// the version too.
func (ws *Writes) Pending(table string, version uint64) <-chan struct{} {
	if ws == nil {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.tables[table] {
		if w.lo <= version && version <= w.hi {
			return w.done
		}
	}
	return nil
}

// InFlight returns how many writes of table are in flight (tests, metrics).
func (ws *Writes) InFlight(table string) int {
	if ws == nil {
		return 0
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.tables[table])
}
