// Package landing tracks the store writes in flight in this process, so
// that the resolver running next to the proxy can hold the read of an
// intent until the store write of its version has landed, instead of
// reading too early, finding the old row and reading again.
//
// The proxy begins a Write, with the range of versions it stamped, before
// it appends their intents (so the resolver cannot see an intent before
// its write is known here) and ends it once the store write returned,
// whatever it did; a write the store applied tells first what it stored
// (Stored), so that a held read can take the row the write left instead
// of reading it back (Write.Row). The resolver asks Pending for the version its read
// must find. Nothing here decides what is published: the resolver's core
// does, from a held read (only a later read) or a row handed over (a
// durable row of the version, or newer, the read had to find); intents of
// another process (other proxies on Kafka) are simply not known here and
// are read as before.
package landing

import (
	"bytes"
	"sync"

	"github.com/wail-cdc/wail/internal/store"
)

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

	// Set by Stored before End; read only once done is closed.
	muts  []store.Mutation
	outs  []store.Outcome
	index sync.Once
	rows  map[string]int // key: index in muts of its newest applied mutation
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

// Stored tells what the store write stored: muts as given to
// store.Apply, which answered outs without an error (durable, as the
// proxy's answer says). Call it before End, at most once; a write that
// failed ends without it and hands over no rows. muts and their bytes
// must not change afterwards.
func (w *Write) Stored(muts []store.Mutation, outs []store.Outcome) {
	if w == nil || len(muts) != len(outs) {
		return
	}
	w.muts, w.outs = muts, outs
}

// Done returns a channel closed when the write ended.
func (w *Write) Done() <-chan struct{} { return w.done }

// Row returns the row the write left for key once it ended: that of the
// newest of its mutations of key that the store applied, as Get would
// have read it right after the write committed (a snapshot taken then,
// which may be earlier than a read asked for while the write ran: the
// store may hold a newer version by now). false: the write has not
// ended, failed, or applied no mutation of key.
func (w *Write) Row(key []byte) (store.Row, bool) {
	select {
	case <-w.done:
	default:
		return store.Row{}, false
	}
	w.index.Do(func() {
		w.rows = make(map[string]int, len(w.muts))
		for i := range w.muts {
			if !w.outs[i].Applied {
				continue
			}
			k := string(w.muts[i].Key)
			if j, ok := w.rows[k]; !ok || w.muts[j].Version < w.muts[i].Version {
				w.rows[k] = i
			}
		}
	})
	i, ok := w.rows[string(key)]
	if !ok {
		return store.Row{}, false
	}
	m := &w.muts[i]
	if m.Delete {
		return store.Row{Version: m.Version, Deleted: true}, true // as stores read tombstones: no value, no schema
	}
	// A copy, as a store read returns: the value is a slice of the whole
	// request (api's codec), which an event on its way would keep alive.
	return store.Row{Value: bytes.Clone(m.Value), Version: m.Version, SchemaID: m.SchemaID}, true
}

// Pending returns the earliest write in flight of table whose range
// holds version, or nil when no write in flight holds it. Once its Done
// channel closes, ask again: another write may hold the version too.
func (ws *Writes) Pending(table string, version uint64) *Write {
	if ws == nil {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.tables[table] {
		if w.lo <= version && version <= w.hi {
			return w
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
