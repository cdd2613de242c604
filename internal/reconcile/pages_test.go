package reconcile

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// readsCounted is the rig's store with two read levels, counting the
// reads of each key and the levels asked.
type readsCounted struct {
	*pebble.Store
	mu     sync.Mutex
	reads  map[string]int
	levels map[store.Level]int
}

func (s *readsCounted) Levels() []string { return []string{"one", "quorum"} }

func (s *readsCounted) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	s.mu.Lock()
	s.reads[string(key)]++
	s.levels[level]++
	s.mu.Unlock()
	return s.Store.Get(ctx, table, key, 0)
}

// TestRunPages: a table larger than a page of the store scan (and of the
// batches decided and logged together) is reconciled whole: every key
// scanned once, an intent logged for each key behind, in several pages
// and batches. Only the keys the scan does not show up to date are read,
// at the strongest level.
func TestRunPages(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	const n = 2*pageKeys + 1
	var events []intent.Event
	behind := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("k%05d", i)
		r.write(k, uint64(100+i), false)
		switch i % 3 {
		case 0: // never published
			behind[k] = true
		case 1: // published at the version stored
			events = append(events, intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: uint64(100 + i), Value: []byte("x")})
		case 2: // the bus ahead of the store (a restored store)
			events = append(events, intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: uint64(200 + i), Value: []byte("x")})
		}
	}
	if err := r.bus.Publish(t.Context(), "t", events); err != nil {
		t.Fatal(err)
	}
	r.resolveAll()
	st := &readsCounted{Store: r.store, reads: map[string]int{}, levels: map[store.Level]int{}}
	o := r.opts()
	o.Store = st
	rep, err := Run(t.Context(), o, r.table, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != n || rep.Behind != int64(len(behind)) {
		t.Fatalf("report: %d scanned, %d behind; want %d, %d", rep.Scanned, rep.Behind, n, len(behind))
	}
	got := r.intents()
	for k := range behind {
		if ins := got[k]; len(ins) != 1 || ins[0].Version != 100+keyIndex(k) {
			t.Errorf("key %s behind: intents %+v, want one", k, ins)
		}
	}
	if len(got) != len(behind) {
		t.Errorf("intents for %d keys, want the %d behind", len(got), len(behind))
	}
	for k, c := range st.reads {
		if !behind[k] || c != 1 {
			t.Errorf("key %s read %d times (behind %v): want only the keys behind, once", k, c, behind[k])
		}
	}
	if len(st.reads) != len(behind) {
		t.Errorf("%d keys read, want the %d behind", len(st.reads), len(behind))
	}
	if len(st.levels) != 1 || st.levels[1] == 0 {
		t.Errorf("reads at levels %v, want all at the strongest (1)", st.levels)
	}
	// A chunk of a page's keys at most: one pass (one fence) per page,
	// the same report.
	o.ChunkBytes, o.DryRun = 1, true
	r.resolveAll()
	before := r.log.committed.Load()
	rep, err = Run(t.Context(), o, r.table, nil)
	if err != nil || rep.Scanned != n {
		t.Fatalf("in chunks: %d scanned, %v; want %d", rep.Scanned, err, n)
	}
	if fences := r.log.committed.Load() - before; fences != 3 {
		t.Errorf("%d fences of %d keys in chunks of a page, want 3", fences, n)
	}
}

func keyIndex(k string) uint64 {
	var i uint64
	fmt.Sscanf(k, "k%05d", &i)
	return i
}
