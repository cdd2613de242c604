package cassandra

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// storesOnEachNode opens a store per node of the test cluster, each with
// that node as its only coordinator, on one fresh keyspace.
func storesOnEachNode(t *testing.T, opts Options) []*Store {
	var stores []*Store
	for _, h := range opts.Hosts {
		o := opts
		o.Coordinators = []string{h}
		stores = append(stores, openTest(t, o))
	}
	return stores
}

// wantCurrentID fails unless wail table name exists with the id of its
// current generation (read at SERIAL), and returns that id.
func wantCurrentID(t *testing.T, s *Store, name string) gocql.UUID {
	t.Helper()
	gen, err := s.generation(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	id := tableIDOf(t, s, name)
	if want := tableID(s.ks, generationName(name, gen)); id != want {
		t.Fatalf("table %s has id %s, not %s of its generation %d: it is a dropped table's id, whose rows a node that missed "+
			"the drop keeps", name, id, want, gen)
	}
	return id
}

// TestCreateAfterConcurrentDrop: a create that read the table's
// generation just before another process's drop moved it on, and runs
// its CREATE TABLE after that drop, must not leave the table under the
// dropped table's id: a node that missed the drop would keep the dropped
// rows in it (reads at ONE, read repairs and snapshots bring them back
// without an event). By DropTable, and by DropTablePinned with the pin
// read before (the catalog's drops).
func TestCreateAfterConcurrentDrop(t *testing.T) {
	for _, c := range []struct {
		name string
		drop func(s *Store, ctx context.Context, table string) error
	}{
		{"DropTable", (*Store).DropTable},
		{"DropTablePinned", func(s *Store, ctx context.Context, table string) error {
			pin, err := s.DropPin(ctx, table)
			if err != nil {
				return err
			}
			return s.DropTablePinned(ctx, table, pin)
		}},
	} {
		t.Run(c.name, func(t *testing.T) { createAfterConcurrentDrop(t, c.drop) })
	}
}

func createAfterConcurrentDrop(t *testing.T, drop func(s *Store, ctx context.Context, table string) error) {
	stores := storesOnEachNode(t, testOptions(t))
	creator, dropper := stores[0], stores[1]
	ctx := t.Context()
	if err := creator.CreateTable(ctx, "race"); err != nil {
		t.Fatal(err)
	}
	old := tableIDOf(t, creator, "race")
	if _, err := creator.Apply(ctx, "race", []store.Mutation{{Key: []byte("k"), Value: []byte("dropped"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	creator.fault = func(op string, run func() error) error {
		if op == "create" && dropped == 0 {
			dropped++
			if err := drop(dropper, ctx, "race"); err != nil {
				return fmt.Errorf("the concurrent drop: %w", err)
			}
		}
		return run()
	}
	if err := creator.CreateTable(ctx, "race"); err != nil {
		t.Fatal(err)
	}
	creator.fault = nil
	if id := wantCurrentID(t, creator, "race"); id == old {
		t.Fatalf("the table has the dropped table's id %s", old)
	}
	if _, found, err := creator.Get(ctx, "race", []byte("k"), 1); err != nil || found {
		t.Fatalf("the dropped row: found=%v, %v", found, err)
	}
}

// TestStaleTableRepairedByRacingCreators: a table left under an older
// generation's name (a create that lost the race above, in a process that
// ran an earlier release or died before it looked again) is left aside,
// and dropped as garbage, by whichever creators come next, however many
// at once, which make the current generation's table; the table they
// agree on is then never dropped by a later create, and keeps its rows.
func TestStaleTableRepairedByRacingCreators(t *testing.T) {
	stores := storesOnEachNode(t, testOptions(t))
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
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, st := range stores {
		wg.Go(func() { errs[i] = st.CreateTable(ctx, "stale") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	id := wantCurrentID(t, s, "stale")
	if _, err := stores[1].Apply(ctx, "stale", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	for i, st := range stores {
		if err := st.CreateTable(context.WithoutCancel(ctx), "stale"); err != nil {
			t.Fatalf("store %d, again: %v", i, err)
		}
	}
	if now := wantCurrentID(t, s, "stale"); now != id {
		t.Fatalf("a create of a table in place changed its id from %s to %s", id, now)
	}
	if row, found, err := stores[2].Get(ctx, "stale", []byte("k"), 1); err != nil || !found || row.Version != 1 {
		t.Fatalf("the row written after the create: %+v found=%v, %v", row, found, err)
	}
	if _, found, err := s.tableIDNow(ctx, cname); err != nil || found {
		t.Fatalf("the table left under generation 0's name: found=%v, %v, want it dropped as garbage", found, err)
	}
}

// TestGenerationReadShared: the first requests of a table come together
// (a resolver's jobs, a subscription's reads), and each read the table's
// generation at SERIAL on its own: reads of one row that contend in
// Paxos, which with a coordinator stalled outlasted the requests'
// deadlines (TestFirstReadsDuringAStall). They share one read now; a
// request that knows of a forget (its table found gone) does not share a
// read begun before it.
func TestGenerationReadShared(t *testing.T) {
	opts := testOptions(t)
	opts.QueryTimeout = time.Minute // an attempt held by the fault below is not cut short (and counted again)
	s := openTest(t, opts)
	if err := s.CreateTable(t.Context(), "shared"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reads := 0
	// The reads go on one at a time: two SERIAL reads of one row at once
	// may contend in Paxos, time out and be tried again (counted again).
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	s.fault = func(op string, run func() error) error {
		if op == "generation" {
			mu.Lock()
			reads++
			wait := release[min(reads, 2)-1]
			mu.Unlock()
			<-wait
		}
		return run()
	}
	s.forgetGen("shared", -1)
	readsNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return reads
	}
	var wg, first sync.WaitGroup
	for range 8 {
		first.Go(func() {
			if _, err := s.currentGen(t.Context(), "shared"); err != nil {
				t.Error(err)
			}
		})
	}
	for readsNow() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the others join, or read on their own
	if n := readsNow(); n != 1 {
		t.Errorf("8 requests at once read the generation %d times; want once", n)
	}
	// A forget while the read is in flight: a request after it reads
	// again.
	s.forgetGen("shared", -1)
	wg.Go(func() {
		if _, err := s.currentGen(t.Context(), "shared"); err != nil {
			t.Error(err)
		}
	})
	for readsNow() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release[0])
	firstDone := make(chan struct{})
	go func() { first.Wait(); close(firstDone) }()
	select {
	case <-firstDone:
	case <-time.After(5 * time.Second): // one of the 8 came after the forget, and waits on the second read
	}
	close(release[1])
	wg.Wait()
	first.Wait()
	if n := readsNow(); n != 2 {
		t.Errorf("the generation was read %d times; want twice (once before a forget, once after)", n)
	}
}
