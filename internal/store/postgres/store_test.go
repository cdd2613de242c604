package postgres

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func primaryDSN(t testing.TB) string { return sqltest.Postgres(t) }

func replicaDSN(t testing.TB) string { return sqltest.PostgresReplica(t) }

func withSearchPath(t testing.TB, dsn, schema string) string {
	return sqltest.WithSearchPath(t, dsn, schema)
}

func exec(t testing.TB, dsn, sql string, args ...any) { sqltest.ExecPostgres(t, dsn, sql, args...) }

func freshSchema(t testing.TB, dsn string) string { return sqltest.PostgresSchema(t, dsn) }

// openFresh opens a store on a fresh schema of the test database, with the
// replica as level 0 when withReplica is set; tune may change the options.
func openFresh(t testing.TB, withReplica bool, tune ...func(*Options)) *Store {
	t.Helper()
	dsn := primaryDSN(t)
	var replicas []string
	if withReplica {
		replicas = []string{replicaDSN(t)}
	}
	schema := freshSchema(t, dsn)
	opts := Options{DSN: withSearchPath(t, dsn, schema), MaxConns: 8, Logger: quiet}
	for _, r := range replicas {
		opts.ReplicaDSNs = append(opts.ReplicaDSNs, withSearchPath(t, r, schema))
	}
	for _, f := range tune {
		f(&opts)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() }) // before the schema is dropped
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, false) })
}

func TestSuiteWithReplica(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, true) })
}

func TestLevels(t *testing.T) {
	if got := openFresh(t, false).Levels(); len(got) != 1 || got[0] != "primary" {
		t.Errorf("Levels() without replicas = %v, want [primary]", got)
	}
	if got := openFresh(t, true).Levels(); len(got) != 2 || got[0] != "replica-0" || got[1] != "primary" {
		t.Errorf("Levels() with a replica = %v, want [replica-0 primary]", got)
	}
	s := openFresh(t, false)
	for _, l := range []store.Level{-1, 1} {
		if _, _, err := s.Get(t.Context(), "x", []byte("k"), l); err == nil {
			t.Errorf("Get at level %d succeeded", l)
		}
	}
}

// TestInjection: names that would break out of the identifier are refused
// before any SQL is built, and nothing was dropped.
func TestInjection(t *testing.T) {
	s := openFresh(t, false)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		`x"; DROP TABLE wail_victim; --`,
		`victim; DROP TABLE wail__catalog`,
		`x" (key bytea); --`,
		"victim\x00",
		`Victim`,
		`../victim`,
	} {
		if err := s.CreateTable(ctx, name); err == nil {
			t.Errorf("CreateTable(%q) succeeded", name)
		}
		if err := s.SaveTable(ctx, store.Table{Name: name}); err == nil {
			t.Errorf("SaveTable(%q) succeeded", name)
		}
		if _, err := s.Apply(ctx, name, []store.Mutation{{Key: []byte("k"), Version: 1}}); !errors.Is(err, store.ErrUnknownTable) {
			t.Errorf("Apply(%q): %v, want ErrUnknownTable", name, err)
		}
		if _, _, err := s.Get(ctx, name, []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
			t.Errorf("Get(%q): %v, want ErrUnknownTable", name, err)
		}
	}
	if _, err := s.Apply(ctx, "victim", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Errorf("victim table is gone: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestLongNames: names that share PostgreSQL's 63-byte identifier prefix
// are still different tables.
func TestLongNames(t *testing.T) {
	s := openFresh(t, false)
	ctx := t.Context()
	base := strings.Repeat("n", 58)
	names := []string{base, base + "a", base + "b", strings.Repeat("n", 63)}
	for i, name := range names {
		if err := s.CreateTable(ctx, name); err != nil {
			t.Fatalf("CreateTable(%d chars): %v", len(name), err)
		}
		if _, err := s.Apply(ctx, name, []store.Mutation{{Key: []byte("k"), Value: []byte(name), Version: uint64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range names {
		row, found, err := s.Get(ctx, name, []byte("k"), 0)
		if err != nil || !found || row.Version != uint64(i+1) || string(row.Value) != name {
			t.Errorf("table %d (%d chars): %+v found=%v err=%v", i, len(name), row, found, err)
		}
	}
}

// TestCurrent: a write that loses reports the stored version.
func TestCurrent(t *testing.T) {
	s := openFresh(t, false)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "cur"); err != nil {
		t.Fatal(err)
	}
	put := func(k string, v uint64) store.Mutation {
		return store.Mutation{Key: []byte(k), Value: []byte("v"), Version: v}
	}
	if _, err := s.Apply(ctx, "cur", []store.Mutation{put("a", 10), put("b", 20)}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Apply(ctx, "cur", []store.Mutation{put("a", 5), put("b", 21), put("a", 7), put("c", 1)})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Outcome{{Current: 10}, {Applied: true, Current: 21}, {Current: 10}, {Applied: true, Current: 1}}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("outcome %d = %+v, want %+v", i, out[i], want[i])
		}
	}
	if _, err := s.Apply(ctx, "cur", []store.Mutation{put("x", 1<<63)}); err == nil {
		t.Error("version 2^63 was accepted")
	}
}

func TestClosed(t *testing.T) {
	s := openFresh(t, true)
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["apply"] = s.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Version: 1}})
	_, _, checks["get"] = s.Get(ctx, "t", []byte("k"), 0)
	checks["create"] = s.CreateTable(ctx, "t")
	checks["save"] = s.SaveTable(ctx, store.Table{Name: "t"})
	_, checks["tables"] = s.Tables(ctx)
	checks["check"] = s.Check(ctx)
	_, checks["lag"] = s.ReplicaLag(ctx)
	for op, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
}
