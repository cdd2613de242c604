package mysql

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testDSN(t testing.TB) string { return sqltest.MySQL(t) }

func freshDatabase(t testing.TB, dsn string) string { return sqltest.MySQLDatabase(t, dsn) }

// openFresh opens a store on a fresh database; replicas > 0 adds that many
// "replicas" that are the primary itself (no MariaDB replica in tests).
func openFresh(t testing.TB, replicas int, tune ...func(*Options)) *Store {
	t.Helper()
	dsn := freshDatabase(t, testDSN(t))
	opts := Options{DSN: dsn, MaxConns: 8, Logger: quiet}
	for range replicas {
		opts.ReplicaDSNs = append(opts.ReplicaDSNs, dsn)
	}
	for _, f := range tune {
		f(&opts)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() }) // before the database is dropped
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, 0) })
}

func TestSuiteWithReplica(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, 1) })
}

func TestLevels(t *testing.T) {
	if got := openFresh(t, 0).Levels(); len(got) != 1 || got[0] != "primary" {
		t.Errorf("Levels() without replicas = %v, want [primary]", got)
	}
	if got := openFresh(t, 2).Levels(); len(got) != 3 || got[0] != "replica-0" || got[1] != "replica-1" || got[2] != "primary" {
		t.Errorf("Levels() with two replicas = %v", got)
	}
	s := openFresh(t, 0)
	for _, l := range []store.Level{-1, 1} {
		if _, _, err := s.Get(t.Context(), "x", []byte("k"), l); err == nil {
			t.Errorf("Get at level %d succeeded", l)
		}
	}
}

func TestDialect(t *testing.T) {
	for version, want := range map[string]Dialect{
		"10.11.6-MariaDB-0+deb12u1-log": DialectMariaDB,
		"5.5.5-10.11.6-MariaDB":         DialectMariaDB,
		"11.4.2-MariaDB":                DialectMariaDB,
		"5.7.44-log":                    DialectMariaDB,
		"8.0.18":                        DialectMariaDB,
		"8.0.19":                        DialectMySQL8,
		"8.0.36-0ubuntu0.22.04.1":       DialectMySQL8,
		"8.4.0":                         DialectMySQL8,
		"9.1.0":                         DialectMySQL8,
	} {
		if got := detectDialect(version); got != want {
			t.Errorf("detectDialect(%q) = %v, want %v", version, got, want)
		}
	}
	s := openFresh(t, 0)
	if s.Dialect() != DialectMariaDB {
		t.Errorf("dialect of the test server: %v", s.Dialect())
	}
	my := &Store{dialect: DialectMySQL8}
	q := my.upsertSQL("`t`", 2)
	for _, part := range []string{"VALUES (?,?,?,?,?),(?,?,?,?,?) AS new ON DUPLICATE KEY UPDATE", "IF(new.version > version, new.value, value)"} {
		if !strings.Contains(q, part) {
			t.Errorf("MySQL 8 statement %q lacks %q", q, part)
		}
	}
	if strings.Contains(q, "VALUES(") || !strings.HasSuffix(q, "version = GREATEST(version, new.version)") {
		t.Errorf("MySQL 8 statement: %q", q)
	}
}

// TestInjection: names that would break out of the identifier are refused
// before any SQL is built, and nothing was dropped.
func TestInjection(t *testing.T) {
	s := openFresh(t, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"x`; DROP TABLE wail_victim; --",
		"victim; DROP TABLE wail__catalog",
		"x` (k int); --",
		"victim\x00",
		"Victim",
		"../victim",
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

// TestLongNames: names longer than MySQL's 64-character table names are
// still different tables.
func TestLongNames(t *testing.T) {
	s := openFresh(t, 0)
	ctx := t.Context()
	base := strings.Repeat("n", 59)
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

// TestCurrent: a write that loses reports the stored version; chunked
// batches are one unit.
func TestCurrent(t *testing.T) {
	s := openFresh(t, 0)
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
	big := make([]store.Mutation, 2*chunkRows+7)
	for i := range big {
		big[i] = put(strings.Repeat("k", i%50)+string(rune('a'+i%26))+string(rune(i)), uint64(i+1))
	}
	out, err = s.Apply(ctx, "cur", big)
	if err != nil {
		t.Fatalf("Apply of %d mutations: %v", len(big), err)
	}
	for i, o := range out {
		if !o.Applied {
			t.Fatalf("mutation %d of a chunked batch: %+v", i, o)
		}
	}
}

func TestClosed(t *testing.T) {
	s := openFresh(t, 1)
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
	for op, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	dsnAt := func(addr string) string { return "wail:wail@tcp(" + addr + ")/wail" }
	for name, addr := range map[string]string{"refused": sqltest.ClosedAddr(t), "silent": sqltest.SilentAddr(t)} {
		start := time.Now()
		s, err := Open(ctx, Options{DSN: dsnAt(addr), QueryTimeout: 500 * time.Millisecond, Logger: quiet})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Since(start) > 3*time.Second {
			t.Errorf("Open (%s): %v after %v, want ErrUnavailable within 3s", name, err, time.Since(start))
		}

		s = openFresh(t, 0, func(o *Options) {
			o.ReplicaDSNs = []string{dsnAt(addr)}
			o.QueryTimeout = 500 * time.Millisecond
		})
		if err := s.CreateTable(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, _, err := s.Get(ctx, "u", []byte("k"), 0); !errors.Is(err, store.ErrUnavailable) || time.Since(start) > 3*time.Second {
			t.Errorf("Get at the dead replica (%s): %v after %v, want ErrUnavailable within 3s", name, err, time.Since(start))
		}
		if _, found, err := s.Get(ctx, "u", []byte("k"), 1); err != nil || found {
			t.Errorf("Get at the primary: found=%v err=%v", found, err)
		}
		if err := s.Check(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Check (%s): %v, want ErrUnavailable", name, err)
		}
	}
	s := openFresh(t, 0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Get(cctx, "x", []byte("k"), 0); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get with a cancelled context: %v, want an error that is not ErrUnavailable", err)
	}
}
