package pebble

import (
	"fmt"
	"testing"
	"time"

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
// win, also after a reopen (the cache starts empty) and after DropTable
// (the cache forgets the table); the cache never holds more than its bound,
// and a write of a key it holds does not read Pebble.
func TestVersionCache(t *testing.T) {
	const nkeys = 300
	for _, tc := range []struct {
		name  string
		limit int
		// readsOnRewrite: Pebble reads of the second round of writes of
		// the same keys (-1: some, but fewer than nkeys).
		readsOnRewrite int64
	}{
		{"default", 0, 0},
		{"off", -1, nkeys},
		{"one per stripe", 1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			s := openT(t, dir, Options{VersionCacheKeys: tc.limit})
			defer func() { _ = s.Close() }()
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			round := func(version uint64, wantApplied bool, wantCurrent uint64) int64 {
				t.Helper()
				before := s.versionReads.Load()
				muts := make([]store.Mutation, nkeys)
				for i := range muts {
					muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%04d", i), Value: []byte("v"), Version: version}
				}
				out, err := s.Apply(ctx, "t", muts)
				if err != nil {
					t.Fatalf("Apply at %d: %v", version, err)
				}
				for i, o := range out {
					if o.Applied != wantApplied || o.Current != wantCurrent {
						t.Fatalf("key %d at %d: %+v, want applied %v current %d", i, version, o, wantApplied, wantCurrent)
					}
				}
				if n := s.cachedVersions(); n > s.versionLimit*numStripes {
					t.Fatalf("%d versions cached, bound %d", n, s.versionLimit*numStripes)
				}
				return s.versionReads.Load() - before
			}
			if got := round(10, true, 10); got != nkeys {
				t.Errorf("first writes read %d versions from Pebble, want %d", got, nkeys)
			}
			rewrite := func(what string, got int64) {
				t.Helper()
				switch {
				case tc.readsOnRewrite >= 0 && got != tc.readsOnRewrite:
					t.Errorf("%s read %d versions from Pebble, want %d", what, got, tc.readsOnRewrite)
				case tc.readsOnRewrite < 0 && (got == 0 || got >= nkeys):
					t.Errorf("%s read %d versions from Pebble, want some evictions but fewer than %d", what, got, nkeys)
				}
			}
			rewrite("stale rewrites", round(5, false, 10))
			round(20, true, 20)
			round(20, false, 20) // a tie loses

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{VersionCacheKeys: tc.limit})
			if got := round(15, false, 20); got != nkeys {
				t.Errorf("after reopen: %d versions read from Pebble, want %d", got, nkeys)
			}
			// The versions read from Pebble (by writes that lost) were cached.
			rewrite("stale rewrites after reopen", round(16, false, 20))
			round(30, true, 30)
			if err := s.DropTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			if n := s.cachedVersions(); n != 0 {
				t.Errorf("%d versions cached after DropTable", n)
			}
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			round(1, true, 1)
		})
	}
}

// TestVersionCacheBound writes more keys than the cache holds: it stays at
// its bound, and the evicted keys still lose to stale writes.
func TestVersionCacheBound(t *testing.T) {
	ctx := t.Context()
	s := openT(t, t.TempDir(), Options{NoSync: true, VersionCacheKeys: 2 * numStripes})
	defer s.Close()
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
	for i := range muts {
		muts[i].Version = 50
	}
	out, err := s.Apply(ctx, "t", muts)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Applied || o.Current != 100 {
			t.Fatalf("stale write of key %d: %+v", i, o)
		}
	}
}
