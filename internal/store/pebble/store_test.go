package pebble

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openT(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, t.TempDir(), Options{})
	})
}

func TestSuiteNoSync(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, t.TempDir(), Options{NoSync: true, CacheBytes: 1 << 20})
	})
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := openT(t, dir, Options{})
	for _, tb := range []string{"users", "orders"} {
		if err := s.CreateTable(ctx, tb); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, "users", []store.Mutation{
		{Key: []byte("alice"), Value: []byte("a1"), Version: 10},
		{Key: []byte("bob"), Version: 11, Delete: true},
		{Key: []byte{0, 0xff}, Value: []byte{}, Version: 12},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTable(ctx, store.Table{Name: "users", Spec: []byte("spec-u")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	defer s.Close()
	for _, tc := range []struct {
		key     []byte
		version uint64
		deleted bool
		value   []byte
	}{
		{[]byte("alice"), 10, false, []byte("a1")},
		{[]byte("bob"), 11, true, nil},
		{[]byte{0, 0xff}, 12, false, []byte{}},
	} {
		row, found, err := s.Get(ctx, "users", tc.key, 0)
		if err != nil || !found || row.Version != tc.version || row.Deleted != tc.deleted || !bytes.Equal(row.Value, tc.value) {
			t.Errorf("after reopen, key %q: %+v found=%v err=%v; want version %d deleted=%v value %q",
				tc.key, row, found, err, tc.version, tc.deleted, tc.value)
		}
	}
	// The tombstone still rejects older writes after reopen.
	out, err := s.Apply(ctx, "users", []store.Mutation{{Key: []byte("bob"), Value: []byte("old"), Version: 5}})
	if err != nil || out[0].Applied || out[0].Current != 11 {
		t.Errorf("stale put over reopened tombstone: %+v, %v; want not applied, Current 11", out, err)
	}
	// Tables registered before Close are known without CreateTable.
	if _, _, err := s.Get(ctx, "orders", []byte("x"), 0); err != nil {
		t.Errorf("Get on reopened table orders: %v", err)
	}
	if _, _, err := s.Get(ctx, "nope", []byte("x"), 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Get on unknown table after reopen: %v, want ErrUnknownTable", err)
	}
	ts, err := s.Tables(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "users" || string(ts[0].Spec) != "spec-u" {
		t.Errorf("Tables after reopen: %+v, %v", ts, err)
	}
}

func TestErrors(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx := t.Context()
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "t", []byte("k"), 1); err == nil {
		t.Error("Get at level 1 succeeded")
	}
	if _, _, err := s.Get(ctx, "t", []byte("k"), -1); err == nil {
		t.Error("Get at level -1 succeeded")
	}
	if got := s.Levels(); len(got) != 1 || got[0] != "local" {
		t.Errorf("Levels() = %v", got)
	}
	if _, err := s.Apply(ctx, "zz", []store.Mutation{{Key: []byte("k"), Version: 1}}); err == nil ||
		!errors.Is(err, store.ErrUnknownTable) || err.Error() != "pebble: apply zz: unknown table" {
		t.Errorf("Apply on unknown table: %v", err)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	defer s.Close()
	if s2, err := Open(dir, Options{Logger: quiet}); err == nil {
		s2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

// TestSuiteWideRace runs the suite with a short sleep between the
// version check and the commit, so that a missing or wrong lock shows up as
// lost updates in the Concurrent subtest.
func TestSuiteWideRace(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openT(t, t.TempDir(), Options{NoSync: true})
		s.testHookCheck = func() { time.Sleep(10 * time.Microsecond) }
		return s
	})
}
