package cassandra

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are the options of a store on a fresh keyspace of the test
// cluster: replication factor 3 in its data center, the default levels.
func testOptions(t testing.TB) Options {
	hosts := cassandratest.Hosts(t)
	return Options{
		Hosts: hosts, Keyspace: cassandratest.Keyspace(t, hosts), LocalDC: cassandratest.DC(),
		Replication: Replication{cassandratest.DC(): 3}, QueryTimeout: 10 * time.Second, Logger: quiet,
	}
}

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, testOptions(t)) })
}

// TestWriteTimestampIsTheVersion: Cassandra holds every cell of a row at
// the write timestamp wail's version gave it, and a delete is live cells
// (deleted=true, an empty value), not a Cassandra tombstone.
func TestWriteTimestampIsTheVersion(t *testing.T) {
	s := openTest(t, testOptions(t))
	ctx := t.Context()
	if err := s.CreateTable(ctx, "ts"); err != nil {
		t.Fatal(err)
	}
	const v1, v2 = uint64(228014804086816768), uint64(228014804086816769 + 1<<20)
	if _, err := s.Apply(ctx, "ts", []store.Mutation{{Key: []byte("k"), Value: []byte("x"), Version: v1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "ts", []store.Mutation{{Key: []byte("k"), Version: v2, Delete: true}}); err != nil {
		t.Fatal(err)
	}
	var value nullable
	var deleted bool
	var wtValue, wtVersion, wtDeleted int64
	q := "SELECT value, deleted, WRITETIME(value), WRITETIME(version), WRITETIME(deleted) FROM " + s.ks + ".wail_ts WHERE key = ?"
	if err := s.session.Query(q, []byte("k")).Consistency(gocql.All).Scan(&value, &deleted, &wtValue, &wtVersion, &wtDeleted); err != nil {
		t.Fatal(err)
	}
	if !deleted || value.null || len(value.b) != 0 {
		t.Errorf("after the delete: deleted=%v value=%q (null=%v), want true and an empty, non-null value", deleted, value.b, value.null)
	}
	for name, wt := range map[string]int64{"value": wtValue, "version": wtVersion, "deleted": wtDeleted} {
		if uint64(wt) != v2 {
			t.Errorf("WRITETIME(%s) = %d, want the version %d", name, wt, v2)
		}
	}
}

// TestWriteBound: a write whose deadline leaves less than the cluster's
// write_request_timeout is not sent (store.ErrNotApplied), and nothing is
// written; with enough time it goes through.
func TestWriteBound(t *testing.T) {
	s := openTest(t, testOptions(t))
	bound := s.writeBound()
	if bound <= 0 {
		t.Fatalf("write_request_timeout not learned: %v", bound)
	}
	t.Logf("write_request_timeout %s", bound)
	if err := s.CreateTable(t.Context(), "bound"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), bound/2)
	defer cancel()
	_, err := s.Apply(ctx, "bound", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 5}})
	if !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("Apply with %s left: %v, want ErrNotApplied", bound/2, err)
	}
	if _, found, err := s.Get(t.Context(), "bound", []byte("k"), 1); err != nil || found {
		t.Fatalf("after a write that was not sent: found=%v err=%v", found, err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), bound+5*time.Second)
	defer cancel()
	if out, err := s.Apply(ctx, "bound", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 5}}); err != nil || !out[0].Applied {
		t.Fatalf("Apply with enough time: %v, %v", out, err)
	}
}

// TestUnavailableIsNotApplied: a write the coordinator refuses for want of
// live replicas (replication factor 4 on 3 nodes, written at ALL) is
// store.ErrNotApplied and store.ErrUnavailable; a read at ALL is
// unavailable. (The refusal comes at the write's version read, which runs
// at the write's level before the INSERT: an INSERT refused alone needs
// replicas to go between the two, which this test does not do.)
func TestUnavailableIsNotApplied(t *testing.T) {
	opts := testOptions(t)
	opts.Replication = Replication{"": 4}
	opts.Write = gocql.All
	opts.ReadLadder = []Consistency{gocql.One, gocql.All}
	s := openTest(t, opts)
	if err := s.CreateTable(t.Context(), "unavail"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(t.Context(), "unavail", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 5}, {Key: []byte("j"), Version: 6, Delete: true}})
	if !errors.Is(err, store.ErrNotApplied) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("write at ALL with 3 of 4 replicas: %v, want ErrNotApplied and ErrUnavailable", err)
	}
	if _, _, err := s.Get(t.Context(), "unavail", []byte("k"), 1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read at ALL with 3 of 4 replicas: %v, want ErrUnavailable", err)
	}
	// A scan runs at the strongest read level (ALL), never the weakest.
	if _, err := s.ScanKeys(t.Context(), "unavail", nil, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("scan at ALL with 3 of 4 replicas: %v, want ErrUnavailable", err)
	}
	if _, err := s.ScanKeys(t.Context(), "unavail", []byte("k"), 10); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("scan after a key at ALL with 3 of 4 replicas: %v, want ErrUnavailable", err)
	}
}

// TestPartlyWrittenIsNotNotApplied: a batch of which one key was written
// and another refused for sure (a key longer than Cassandra takes, refused
// at its version read) is not store.ErrNotApplied: the written key's
// version is stored, and the resolver must publish it (invariant 2 and 4:
// an intent aborted as not applied would leave a stored version without
// an event). The caller treats the batch as of unknown outcome (it reads
// the keys back); the error says how many keys were written, not that an
// INSERT's outcome is unknown.
func TestPartlyWrittenIsNotNotApplied(t *testing.T) {
	s := openTest(t, testOptions(t))
	ctx := t.Context()
	if err := s.CreateTable(ctx, "partly"); err != nil {
		t.Fatal(err)
	}
	huge := []byte(strings.Repeat("k", 1<<16)) // Cassandra keys are at most 65535 bytes
	_, err := s.Apply(ctx, "partly", []store.Mutation{{Key: []byte("small"), Value: []byte("v"), Version: 5}, {Key: huge, Value: []byte("v"), Version: 5}})
	if err == nil || errors.Is(err, store.ErrNotApplied) || strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("one key written, one refused: %v, want an error that is neither ErrNotApplied nor an unknown outcome", err)
	}
	if !strings.Contains(err.Error(), "1 of 2 keys written") {
		t.Errorf("one key written, one refused: %v, want it to say 1 of 2 keys written", err)
	}
	row, found, err := s.Get(ctx, "partly", []byte("small"), 1)
	if err != nil || !found || row.Version != 5 {
		t.Fatalf("the written key: %+v found=%v err=%v, want version 5", row, found, err)
	}
	// Refused alone: not applied.
	if _, err := s.Apply(ctx, "partly", []store.Mutation{{Key: huge, Value: []byte("v"), Version: 6}}); !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("a key too long alone: %v, want ErrNotApplied", err)
	}
}

// TestOpenRefusesLevelsThatMissWrites: a strongest read level that does
// not overlap the writes (ONE after writes at ONE, 3 replicas) or that
// cannot be met (THREE with 2 replicas) makes Open fail, naming the fix.
func TestOpenRefusesLevelsThatMissWrites(t *testing.T) {
	cases := []struct {
		name  string
		tune  func(*Options)
		wants string
	}{
		{"read_one_write_one", func(o *Options) { o.Write = gocql.One; o.ReadLadder = []Consistency{gocql.One} }, "does not overlap"},
		{"table_write_one", func(o *Options) { o.TableWrite = map[string]Consistency{"orders": gocql.One} }, "table orders"},
		{"three_of_two", func(o *Options) {
			o.Replication = Replication{cassandratest.DC(): 2}
			o.ReadLadder = []Consistency{gocql.Three}
		}, "needs 3 replicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t)
			tc.tune(&opts)
			s, err := Open(t.Context(), opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("Open: %v, want it to say %q", err, tc.wants)
			}
		})
	}
}

// TestNodes: every node answers, they agree on the schema, each keeps
// writes invisible until they are on disk (batch), and the store learned
// their write_request_timeout.
func TestNodes(t *testing.T) {
	s := openTest(t, testOptions(t))
	c, err := s.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != len(cassandratest.Hosts(t)) || !c.SchemaAgreement {
		t.Fatalf("nodes %+v, schema agreement %v", c.Nodes, c.SchemaAgreement)
	}
	for _, n := range c.Nodes {
		if !n.Up || !n.Answered || n.Err != nil || n.CommitlogSync != "batch" || n.WriteRequestTimeout != c.WriteRequestTimeout || n.DataCenter != cassandratest.DC() {
			t.Errorf("node %+v (store's write_request_timeout %s)", n, c.WriteRequestTimeout)
		}
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestTableOptions: the store reports the read_repair option of each of
// wail's tables in its keyspace (BLOCKING when made, NONE after an ALTER),
// and only of wail's.
func TestTableOptions(t *testing.T) {
	s := openTest(t, testOptions(t))
	ctx := t.Context()
	for _, name := range []string{"kept", "altered"} {
		if err := s.CreateTable(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		"ALTER TABLE " + s.ks + ".wail_altered WITH read_repair = 'NONE'",
		"CREATE TABLE " + s.ks + ".not_wails (k int PRIMARY KEY) WITH read_repair = 'NONE'",
	} {
		if err := s.ddl(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	got, err := s.TableOptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []TableOptions{
		{Keyspace: s.ks, Table: "wail__catalog", ReadRepair: "BLOCKING"},
		{Keyspace: s.ks, Table: "wail__generations", ReadRepair: "BLOCKING"},
		{Keyspace: s.ks, Table: "wail_altered", ReadRepair: "NONE"},
		{Keyspace: s.ks, Table: "wail_kept", ReadRepair: "BLOCKING"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("table options %+v, want %+v", got, want)
	}
}

// TestConcurrentCreateTable: stores creating the same table at once, on
// different coordinators, create one table (the same derived id), and see
// each other's rows.
func TestConcurrentCreateTable(t *testing.T) {
	opts := testOptions(t)
	hosts := opts.Hosts
	stores := make([]*Store, len(hosts))
	for i, h := range hosts {
		o := opts
		o.Coordinators = []string{h}
		stores[i] = openTest(t, o)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.CreateTable(t.Context(), "racy") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if _, err := stores[0].Apply(t.Context(), "racy", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if row, found, err := s.Get(t.Context(), "racy", []byte("k"), 1); err != nil || !found || row.Version != 1 {
			t.Errorf("store %d: %+v found=%v err=%v", i, row, found, err)
		}
	}
	if err := stores[1].Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// tableIDOf reads the id Cassandra holds for the table of wail table
// name's current generation.
func tableIDOf(t *testing.T, s *Store, name string) gocql.UUID {
	t.Helper()
	gen, err := s.generation(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	cname := generationName(name, gen)
	var id gocql.UUID
	if err := s.session.Query("SELECT id FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?", s.ks, cname).
		Consistency(gocql.One).Scan(&id); err != nil {
		t.Fatalf("the id of %s: %v", cname, err)
	}
	return id
}

// TestRecreatedTableGetsAnotherID: a table dropped and created again under
// its name is another Cassandra table (another id), for every store that
// creates it. Cassandra tells tables apart by id, not name, when a node
// catches up on schema changes it missed (Tables.TablesDiff): a node down
// during the drop that finds, when it is back, a table of the same id
// sees no drop at all and keeps the dropped table's rows, which its reads
// return and its read repairs spread into the new table.
func TestRecreatedTableGetsAnotherID(t *testing.T) {
	opts := testOptions(t)
	var stores []*Store
	for _, h := range opts.Hosts {
		o := opts
		o.Coordinators = []string{h}
		stores = append(stores, openTest(t, o))
	}
	ctx := t.Context()
	seen := map[gocql.UUID]int{}
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, len(stores))
		for i, s := range stores {
			wg.Go(func() { errs[i] = s.CreateTable(ctx, "again") })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: store %d: %v", round, i, err)
			}
		}
		id := tableIDOf(t, stores[0], "again")
		if r, ok := seen[id]; ok {
			t.Fatalf("round %d: the table has id %s again, as in round %d: a node that missed the drop would keep the dropped rows", round, id, r)
		}
		seen[id] = round
		if err := stores[1].Check(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, err := stores[2].Apply(ctx, "again", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: uint64(round + 1)}}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := stores[round%len(stores)].DropTable(ctx, "again"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// TestRowLimit: the store's row limit on the test cluster (its defaults,
// 16 MiB frames and mutations) leaves room for the rest of the request:
// a row of exactly the limit is stored, and one past what Cassandra takes
// is refused (not applied), which is why the proxy refuses such rows up
// front (store.MutationLimiter); that refusal makes the store ask the
// nodes for their limits again.
func TestRowLimit(t *testing.T) {
	s := openTest(t, testOptions(t))
	ctx := t.Context()
	limit, by := s.MutationLimit()
	if limit != 16<<20-rowSlack || !strings.Contains(by, "on Cassandra node") {
		t.Fatalf("limit %d (%s), want the test cluster's 16 MiB less %d", limit, by, rowSlack)
	}
	if err := s.CreateTable(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 1000)
	value := make([]byte, limit-len(key))
	if _, err := s.Apply(ctx, "big", []store.Mutation{{Key: []byte(key), Value: value, Version: 1, SchemaID: 7}}); err != nil {
		t.Fatalf("a row of %d bytes, the limit: %v", limit, err)
	}
	if row, found, err := s.Get(ctx, "big", []byte(key), 1); err != nil || !found || len(row.Value) != len(value) {
		t.Fatalf("read back: %d bytes, found=%v, %v", len(row.Value), found, err)
	}
	_, err := s.Apply(ctx, "big", []store.Mutation{{Key: []byte("k"), Value: make([]byte, 16<<20), Version: 2}})
	if !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("a row of 16 MiB: %v, want it refused (not applied)", err)
	}
	// Refused for its size: the nodes are asked again at the next
	// MutationLimit (one of them may have been restarted with a smaller
	// limit since Open).
	s.limits.mu.Lock()
	due := s.limits.at.IsZero()
	s.limits.mu.Unlock()
	if !tooLarge(err) || !due {
		t.Fatalf("a row of 16 MiB: %v: not seen as refused for its size (the limits are not asked again)", err)
	}
	if got, _ := s.MutationLimit(); got != limit {
		t.Fatalf("limit %d meanwhile, want %d", got, limit)
	}
	s.bg.Wait()
	if got, by := s.MutationLimit(); got != limit || !strings.Contains(by, "on Cassandra node") {
		t.Fatalf("limit %d (%s) asked again, want %d", got, by, limit)
	}
}

// TestSweepSparesATableOfAnotherID: the garbage a drop sweeps is only the
// tables of older generations wail made (their ids are wail's, tableID):
// a table under such a name with another id (made by hand, or by a build
// that kept its own ids) is left as it is.
func TestSweepSparesATableOfAnotherID(t *testing.T) {
	s := openTest(t, testOptions(t))
	ctx := t.Context()
	for range 2 { // generation 0, then 1, each created and dropped
		if err := s.CreateTable(ctx, "sw"); err != nil {
			t.Fatal(err)
		}
		if err := s.DropTable(ctx, "sw"); err != nil {
			t.Fatal(err)
		}
	}
	byHand := generationName("sw", 1)
	if err := s.ddl(ctx, "CREATE TABLE "+s.ks+"."+byHand+" (key blob PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropTable(ctx, "sw"); err != nil { // sweeps below generation 2
		t.Fatal(err)
	}
	var n int
	if err := s.session.Query("SELECT count(*) FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?", s.ks, byHand).
		Consistency(gocql.One).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%s, made by hand under another id, was dropped by the sweep of a drop", byHand)
	}
}

// TestWriteAfterARecreateElsewhere: a store whose cached generation of a
// table was dropped by another process, and the table created again
// there, writes to the new generation's table: the write that finds its
// table gone (nothing written) reads the generation again and runs on the
// new one, rather than failing the intent as written to no table.
func TestWriteAfterARecreateElsewhere(t *testing.T) {
	opts := testOptions(t) // one keyspace for both
	a, b := openTest(t, opts), openTest(t, opts)
	ctx := t.Context()
	if err := a.CreateTable(ctx, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Apply(ctx, "elsewhere", []store.Mutation{{Key: []byte("k"), Value: []byte("v1"), Version: 5}}); err != nil || !out[0].Applied {
		t.Fatalf("first write: %v, %v", out, err)
	}
	if err := b.DropTable(ctx, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTable(ctx, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	out, err := a.Apply(ctx, "elsewhere", []store.Mutation{{Key: []byte("k"), Value: []byte("v2"), Version: 3}})
	if err != nil || !out[0].Applied {
		t.Fatalf("a write after the table was dropped and created again by another store: %v, %v, want applied on the new table", out, err)
	}
	if row, found, err := b.Get(ctx, "elsewhere", []byte("k"), 1); err != nil || !found || row.Version != 3 {
		t.Fatalf("the new table through the other store: %+v found=%v err=%v, want version 3", row, found, err)
	}
}
