package cassandra

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// errHeld is what a held-back DROP TABLE returns to the store that sent
// it: a client timeout, while the coordinator applies it later.
var errHeld = errors.New("timed out waiting for the DROP TABLE (it reaches Cassandra later)")

// lateDrops holds back the DROP TABLE statements of a store (its fault
// hook's "drop"), as a coordinator that applies them after the client
// gave up would, until land sends them.
type lateDrops struct {
	mu   sync.Mutex
	runs []func() error
}

func (l *lateDrops) hold(s *Store) {
	s.fault = func(op string, run func() error) error {
		if op != "drop" {
			return run()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.runs = append(l.runs, run)
		return errHeld
	}
}

// land applies the held DROPs now.
func (l *lateDrops) land(t *testing.T) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, run := range l.runs {
		if err := run(); err != nil {
			t.Fatalf("a late DROP: %v", err)
		}
	}
	return len(l.runs)
}

// wantRow fails unless every store, and a store opened afresh on the
// keyspace, reads key k of table at the strongest level with version v.
func wantRow(t *testing.T, opts Options, stores []*Store, table, k string, v uint64) {
	t.Helper()
	fresh := openTest(t, opts)
	for i, s := range append(stores, fresh) {
		row, found, err := s.Get(context.WithoutCancel(t.Context()), table, []byte(k), store.Level(len(s.ladder)-1))
		if err != nil || !found || row.Version != v {
			t.Fatalf("store %d: the acknowledged row %s of table %s: %+v found=%v, %v: the late DROP dropped the table created since",
				i, k, table, row, found, err)
		}
	}
}

// TestLateDropSparesRecreatedTable: a drop whose DROP TABLE reaches
// Cassandra after the client gave up on it (the drop failed, was run
// again and finished, and the table was created again and written) must
// not drop the table created since: Cassandra drops by name, so the
// acknowledged rows of the new table would be lost.
func TestLateDropSparesRecreatedTable(t *testing.T) {
	opts := testOptions(t)
	stores := storesOnEachNode(t, opts)
	dropper, creator := stores[0], stores[1]
	ctx := t.Context()
	if err := dropper.CreateTable(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if _, err := dropper.Apply(ctx, "late", []store.Mutation{{Key: []byte("k"), Value: []byte("dropped"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	var late lateDrops
	late.hold(dropper)
	if err := dropper.DropTable(ctx, "late"); !errors.Is(err, errHeld) {
		t.Fatalf("the drop whose DROP is held: %v", err)
	}
	dropper.fault = nil
	if err := dropper.DropTable(ctx, "late"); err != nil { // the drop run again
		t.Fatal(err)
	}
	if err := creator.CreateTable(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := creator.Get(ctx, "late", []byte("k"), 1); err != nil || found {
		t.Fatalf("the dropped row in the new table: found=%v, %v", found, err)
	}
	if _, err := creator.Apply(ctx, "late", []store.Mutation{{Key: []byte("k2"), Value: []byte("new"), Version: 2}}); err != nil {
		t.Fatal(err)
	}
	if n := late.land(t); n == 0 {
		t.Fatal("no DROP was held")
	}
	wantRow(t, opts, stores, "late", "k2", 2)
	if _, err := dropper.Apply(ctx, "late", []store.Mutation{{Key: []byte("k3"), Value: []byte("new"), Version: 3}}); err != nil {
		t.Fatalf("a write through the dropper after the late DROP: %v", err)
	}
	wantRow(t, opts, stores, "late", "k3", 3)
}

// TestLateCleanupDropSparesRecreatedTable: a creator that finds a table
// left under a dropped generation (the late CREATE of a creator that read
// the generation before a drop moved it on) and drops it, whose DROP
// reaches Cassandra after another creator made and wrote the table, must
// not drop that table.
func TestLateCleanupDropSparesRecreatedTable(t *testing.T) {
	opts := testOptions(t)
	stores := storesOnEachNode(t, opts)
	ctx := t.Context()
	s := stores[0]
	if err := s.CreateTable(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropTable(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	// The late CREATE of a creator that read generation 0.
	q := s.ks + "." + generationName("stale", 0)
	cname, _ := tableName("stale")
	if err := s.ddl(ctx, fmt.Sprintf("CREATE TABLE %s (key blob PRIMARY KEY, value blob, version bigint, deleted boolean, schema_id bigint) "+
		"WITH ID = %s AND gc_grace_seconds = 0", q, tableID(s.ks, cname))); err != nil {
		t.Fatal(err)
	}
	var late lateDrops
	late.hold(s)
	if err := s.CreateTable(ctx, "stale"); err != nil && !errors.Is(err, errHeld) {
		t.Fatal(err)
	}
	s.fault = nil
	if err := stores[1].CreateTable(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].Apply(ctx, "stale", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := late.land(t); n == 0 {
		t.Fatal("no DROP was held: the table left under the dropped generation was not cleaned up")
	}
	wantRow(t, opts, stores, "stale", "k", 1)
}

// TestRecreatedTableSeenThroughTheCatalog: a process that wrote a table
// before it was dropped and created again (by others) writes the new
// generation's table once it read the new catalog entry, even while the
// dropped generation's table still exists (its DROP, or the cleanup of
// it, not landed yet): a write there would be acknowledged and lost.
func TestRecreatedTableSeenThroughTheCatalog(t *testing.T) {
	opts := testOptions(t)
	stores := storesOnEachNode(t, opts)
	dropper, writer, creator := stores[0], stores[1], stores[2]
	ctx := t.Context()
	if _, ok, err := dropper.SwapTable(ctx, "cat", nil, []byte("first")); err != nil || !ok {
		t.Fatalf("the catalog entry: %v %v", ok, err)
	}
	if err := dropper.CreateTable(ctx, "cat"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Tables(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Apply(ctx, "cat", []store.Mutation{{Key: []byte("k"), Value: []byte("old"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	var late lateDrops
	late.hold(dropper)
	late.hold(creator)
	if err := dropper.DropTable(ctx, "cat"); !errors.Is(err, errHeld) {
		t.Fatalf("the drop whose DROP is held: %v", err)
	}
	if _, ok, err := dropper.SwapTable(ctx, "cat", []byte("first"), nil); err != nil || !ok {
		t.Fatalf("deleting the catalog entry: %v %v", ok, err)
	}
	if err := creator.CreateTable(ctx, "cat"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := creator.SwapTable(ctx, "cat", nil, []byte("second")); err != nil || !ok {
		t.Fatalf("the new catalog entry: %v %v", ok, err)
	}
	if tables, err := writer.Tables(ctx); err != nil || len(tables) != 1 || string(tables[0].Spec) != "second" {
		t.Fatalf("the catalog: %+v, %v", tables, err)
	}
	if _, err := writer.Apply(ctx, "cat", []store.Mutation{{Key: []byte("k2"), Value: []byte("new"), Version: 2}}); err != nil {
		t.Fatal(err)
	}
	if row, found, err := creator.Get(ctx, "cat", []byte("k2"), 1); err != nil || !found || row.Version != 2 {
		t.Fatalf("the write after the catalog showed the new table: %+v found=%v, %v: it went to the dropped generation's table", row, found, err)
	}
	dropper.fault, creator.fault = nil, nil
	late.land(t)
	wantRow(t, opts, stores, "cat", "k2", 2)
}

// TestPinnedDropSparesRecreatedTable: a drop that reaches the store late
// (another drop of the table finished, and the table was created again
// and written) with the pin the table had before the drops moves no
// generation and drops no table in use: by DropTable it moved the new
// table's generation on and dropped its table, with its acknowledged rows.
// Generation 0 (no row in wail__generations) and a later one; a drop with
// the pin run twice is idempotent.
func TestPinnedDropSparesRecreatedTable(t *testing.T) {
	opts := testOptions(t)
	stores := storesOnEachNode(t, opts)
	fast, slow := stores[0], stores[1]
	ctx := t.Context()
	if err := fast.CreateTable(ctx, "pin"); err != nil {
		t.Fatal(err)
	}
	for gen := int64(0); gen < 2; gen++ {
		pin, err := slow.DropPin(ctx, "pin")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the fast drop, run again
			if err := fast.DropTablePinned(ctx, "pin", pin); err != nil {
				t.Fatalf("generation %d: the drop: %v", gen, err)
			}
		}
		if _, _, err := fast.Get(ctx, "pin", []byte("k"), 1); !errors.Is(err, store.ErrUnknownTable) {
			t.Fatalf("generation %d: a read after the drop: %v, want ErrUnknownTable", gen, err)
		}
		if err := fast.CreateTable(ctx, "pin"); err != nil {
			t.Fatal(err)
		}
		v := uint64(gen + 1)
		if _, err := fast.Apply(ctx, "pin", []store.Mutation{{Key: []byte("k"), Value: []byte("new"), Version: v}}); err != nil {
			t.Fatal(err)
		}
		if err := slow.DropTablePinned(ctx, "pin", pin); err != nil {
			t.Fatalf("generation %d: the late drop: %v", gen, err)
		}
		if now, err := fast.generation(ctx, "pin"); err != nil || now != gen+1 {
			t.Fatalf("generation %d: after the late drop the generation is %d (%v), want %d", gen, now, err, gen+1)
		}
		wantRow(t, opts, stores, "pin", "k", v)
	}
	for _, bad := range [][]byte{nil, []byte("x"), {0x80, 0, 0, 0, 0, 0, 0, 0}} {
		if err := slow.DropTablePinned(ctx, "pin", bad); !errors.Is(err, store.ErrBadPin) {
			t.Fatalf("a drop with pin %x: %v, want ErrBadPin", bad, err)
		}
	}
	wantRow(t, opts, stores, "pin", "k", 2)
}
