package pebble

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

// TestSuiteSmallCaches runs the suite with room for a single version per
// stripe (every write evicts) and a row cache too small for most rows, with
// a widened race window: last writer wins and reads must stay exact when
// the caches miss and evict all the time.
func TestSuiteSmallCaches(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openT(t, t.TempDir(), Options{NoSync: true, VersionCacheKeys: 1, RowCacheBytes: 64 * numStripes})
		s.testHookCheck = func() { time.Sleep(10 * time.Microsecond) }
		return s
	})
}

// TestSuiteNoCaches runs the suite with the version and row caches off:
// every write reads the version from Pebble and every Get reads the row,
// as before the caches.
func TestSuiteNoCaches(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, t.TempDir(), Options{VersionCacheKeys: -1, RowCacheBytes: -1})
	})
}

// TestVersionCache: for each cache size, stale writes lose and newer ones
// win, also after a reopen (Open loads the cache) and after DropTable (the
// cache forgets the table's rows, and only them, also those of a table
// whose name starts with its name); the cache never holds more than its
// bound; a write of a key it holds does not read Pebble, nor does a write
// of a new key while the key's stripe is complete.
func TestVersionCache(t *testing.T) {
	const nkeys = 300
	for _, tc := range []struct {
		name  string
		limit int
		// Pebble reads (-1: some, but fewer than nkeys) of the first
		// writes of new keys, of stale rewrites, of the first writes
		// after a reopen, of the first writes after a DropTable.
		first, rewrite, reopen, dropped int64
	}{
		{"default", 0, 0, 0, 0, 0},
		{"off", -1, nkeys, nkeys, nkeys, nkeys},
		// A new store's stripes are complete; evictions make the stripes
		// with more than one key incomplete, and a reopen loads one key of
		// each stripe; the other table's keys then evict from every stripe.
		{"one per stripe", 1, 0, -1, -1, nkeys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			s := openT(t, dir, Options{VersionCacheKeys: tc.limit})
			defer func() { _ = s.Close() }()
			// "t2" starts with "t": DropTable("t") must forget only the keys
			// under r/t\x00, not every key starting with r/t.
			for _, table := range []string{"t", "t2"} {
				if err := s.CreateTable(ctx, table); err != nil {
					t.Fatal(err)
				}
			}
			write := func(table string, version uint64, wantApplied bool, wantCurrent uint64) int64 {
				t.Helper()
				before := s.versionReads.Load()
				muts := make([]store.Mutation, nkeys)
				for i := range muts {
					muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%04d", i), Value: []byte("v"), Version: version}
				}
				out, err := s.Apply(ctx, table, muts)
				if err != nil {
					t.Fatalf("Apply at %d: %v", version, err)
				}
				for i, o := range out {
					if o.Applied != wantApplied || o.Current != wantCurrent {
						t.Fatalf("%s key %d at %d: %+v, want applied %v current %d", table, i, version, o, wantApplied, wantCurrent)
					}
				}
				if n := s.cachedVersions(); n > s.versionLimit*numStripes {
					t.Fatalf("%d versions cached, bound %d", n, s.versionLimit*numStripes)
				}
				return s.versionReads.Load() - before
			}
			round := func(version uint64, wantApplied bool, wantCurrent uint64) int64 {
				t.Helper()
				return write("t", version, wantApplied, wantCurrent)
			}
			reads := func(what string, got, want int64) {
				t.Helper()
				switch {
				case want >= 0 && got != want:
					t.Errorf("%s read %d versions from Pebble, want %d", what, got, want)
				case want < 0 && (got == 0 || got >= nkeys):
					t.Errorf("%s read %d versions from Pebble, want some but fewer than %d", what, got, nkeys)
				}
			}
			reads("first writes", round(10, true, 10), tc.first)
			reads("stale rewrites", round(5, false, 10), tc.rewrite)
			round(20, true, 20)
			round(20, false, 20) // a tie loses

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{VersionCacheKeys: tc.limit})
			reads("stale writes after reopen", round(15, false, 20), tc.reopen)
			round(30, true, 30)
			write("t2", 7, true, 7)
			if err := s.DropTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			if tc.limit == 0 {
				if n := s.cachedVersions(); n != nkeys {
					t.Errorf("%d versions cached after DropTable, want the other table's %d", n, nkeys)
				}
				reads("stale writes of the table not dropped", write("t2", 6, false, 7), 0)
			}
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			reads("first writes after DropTable", round(1, true, 1), tc.dropped)
		})
	}
}

// TestVersionCacheBound writes more keys than the cache holds: it stays at
// its bound, and the evicted keys still lose to stale writes, also after a
// reopen that found more rows than the cache holds (no stripe is complete:
// the rows Open did not read may fall in any of them).
func TestVersionCacheBound(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openT(t, dir, Options{NoSync: true, VersionCacheKeys: 2 * numStripes})
	defer func() { _ = s.Close() }()
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	const nkeys = 20 * numStripes
	muts := make([]store.Mutation, nkeys)
	for i := range muts {
		muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v"), Version: 100}
	}
	if _, err := s.Apply(ctx, "t", muts); err != nil {
		t.Fatal(err)
	}
	if n := s.cachedVersions(); n != 2*numStripes {
		t.Fatalf("%d versions cached, want the bound %d", n, 2*numStripes)
	}
	wantStale(t, s, muts, 50, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{NoSync: true, VersionCacheKeys: 2 * numStripes})
	if n := s.cachedVersions(); n == 0 || n > 2*numStripes {
		t.Fatalf("%d versions cached after a reopen, want some, at most the bound %d", n, 2*numStripes)
	}
	wantStale(t, s, muts, 60, 100)
}

// TestVersionCacheCorruptRow: Open does not cache a row it cannot decode,
// and its stripe is not complete: a write of that key reads the row and
// fails naming it, as it did before Open loaded the cache; other keys are
// written as usual. A tombstone (a row of the header alone) is no corrupt
// row: Open caches it.
func TestVersionCacheCorruptRow(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{NoSync: true})
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, mut("a", 1), store.Mutation{Key: []byte("gone"), Version: 3, Delete: true})
	if err := s.db.Set(rowKey("t", []byte("bad")), make([]byte, headerLen-1), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{NoSync: true})
	defer s.Close()
	if _, err := s.Apply(t.Context(), "t", []store.Mutation{mut("bad", 5)}); err == nil || !strings.Contains(err.Error(), `corrupt row`) {
		t.Errorf("write of the corrupt row: %v, want an error naming it", err)
	}
	if out := mustApply(t, s, mut("a", 2), mut("new", 1)); !out[0].Applied || !out[1].Applied {
		t.Errorf("writes of other keys: %+v", out)
	}
	before := s.versionReads.Load()
	if out := mustApply(t, s, mut("gone", 2)); out[0].Applied || out[0].Current != 3 {
		t.Errorf("stale write over the tombstone: %+v", out[0])
	}
	if n := s.versionReads.Load() - before; n != 0 {
		t.Errorf("the write over the tombstone read %d versions from Pebble, want 0 (cached by Open)", n)
	}
}

// TestVersionCacheLoad: Open reads every row when they are fewer than the
// cache holds, and a stripe with more rows than its share is not complete:
// stale writes of the rows it could not keep still lose, while a stripe
// that kept all of its rows writes new keys without reading Pebble.
func TestVersionCacheLoad(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	opts := Options{NoSync: true, VersionCacheKeys: 2 * numStripes}
	s := openT(t, dir, opts)
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// 400 keys over 256 stripes of 2: some stripe gets 3 or more (all but
	// certainly, whatever the seed), most get fewer.
	const nkeys = 400
	muts := make([]store.Mutation, nkeys)
	for i := range muts {
		muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v"), Version: 100}
	}
	if _, err := s.Apply(ctx, "t", muts); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, opts)
	defer s.Close()
	complete := 0
	for i := range s.stripes {
		if s.stripes[i].complete {
			complete++
		}
	}
	if complete == 0 || complete == numStripes {
		t.Fatalf("%d of %d stripes complete after Open, want some", complete, numStripes)
	}
	wantStale(t, s, muts, 50, 100)
	before := s.versionReads.Load()
	var fresh []store.Mutation
	for i := 0; len(fresh) < 10; i++ {
		k := fmt.Appendf(nil, "new%05d", i)
		if s.stripes[s.stripeOf(rowKey("t", k))].complete {
			fresh = append(fresh, store.Mutation{Key: k, Value: []byte("v"), Version: 1})
		}
	}
	if out := mustApply(t, s, fresh...); !out[0].Applied {
		t.Fatalf("new keys: %+v", out)
	}
	if n := s.versionReads.Load() - before; n != 0 {
		t.Errorf("new keys of complete stripes read %d versions from Pebble, want 0", n)
	}
}

// TestVersionCacheLoadBytes: Open stops reading rows past versionLoadBytes
// (a table of large values): no stripe is complete, and stale writes of
// the rows it did not read still lose, reading their versions from Pebble
// once.
func TestVersionCacheLoadBytes(t *testing.T) {
	defer func(n int) { versionLoadBytes = n }(versionLoadBytes)
	versionLoadBytes = 10 << 10
	ctx := t.Context()
	dir := t.TempDir()
	s := openT(t, dir, Options{NoSync: true})
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	const nkeys = 100
	muts := make([]store.Mutation, nkeys)
	for i := range muts {
		muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%05d", i), Value: make([]byte, 1<<10), Version: 100}
	}
	mustApply(t, s, muts...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{NoSync: true})
	defer s.Close()
	if n := s.cachedVersions(); n == 0 || n > 12 {
		t.Errorf("%d versions loaded, want the about 10 rows that fit in %d bytes", n, versionLoadBytes)
	}
	for i := range s.stripes {
		if s.stripes[i].complete {
			t.Fatalf("stripe %d complete after a partial load", i)
		}
	}
	// The versions the first stale writes read from Pebble are cached:
	// the second round reads none.
	for round, wantReads := range []int64{nkeys - int64(s.cachedVersions()), 0} {
		before := s.versionReads.Load()
		wantStale(t, s, muts, uint64(50+round), 100)
		if n := s.versionReads.Load() - before; n != wantReads {
			t.Errorf("stale writes, round %d: %d versions read from Pebble, want %d", round+1, n, wantReads)
		}
	}
}

// TestOpenPanicInLoad: a panic while Open reads the rows (Pebble panics on
// some read errors) fails Open with the panic's message, returns no store,
// and closes the database: the directory can be opened again.
func TestOpenPanicInLoad(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{NoSync: true})
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, mut("a", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testHookLoadRow = func() { panic("injected panic in the load") }
	got, err := Open(dir, Options{NoSync: true, Logger: quiet})
	testHookLoadRow = nil
	if got != nil || err == nil || !strings.Contains(err.Error(), "injected panic in the load") {
		t.Fatalf("Open with a panic in the load = %v, %v; want no store and the panic's message", got, err)
	}
	s = openT(t, dir, Options{NoSync: true})
	defer s.Close()
	if out := mustApply(t, s, mut("a", 0)); out[0].Applied || out[0].Current != 1 {
		t.Errorf("stale write after the failed Open: %+v", out[0])
	}
}

// wantStale writes muts again at version, below the current one of every
// key of table "t", and checks that each loses to current.
func wantStale(t *testing.T, s *Store, muts []store.Mutation, version, current uint64) {
	t.Helper()
	for i := range muts {
		muts[i].Version = version
	}
	for i, o := range mustApply(t, s, muts...) {
		if o.Applied || o.Current != current {
			t.Fatalf("stale write of key %d at %d: %+v, want a loss to %d", i, version, o, current)
		}
	}
}
