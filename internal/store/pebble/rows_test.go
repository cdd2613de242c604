package pebble

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestRowCache: a Get of a row just written is served from memory, with
// the row's latest version (also after a tombstone, a losing write and a
// value too large to cache, which must not leave the older row served);
// after a reopen (empty cache) and for rows never written since, Get reads
// Pebble; DropTable forgets the table's rows; the cache keeps to its bound.
func TestRowCache(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprint("nosync_", noSync), func(t *testing.T) { testRowCache(t, noSync) })
	}
}

func testRowCache(t *testing.T, noSync bool) {
	ctx := t.Context()
	dir := t.TempDir()
	const budget = 256 * numStripes // 256 bytes per stripe
	s := openT(t, dir, Options{RowCacheBytes: budget, NoSync: noSync})
	defer func() { _ = s.Close() }()
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	apply := func(muts ...store.Mutation) {
		t.Helper()
		if _, err := s.Apply(ctx, "t", muts); err != nil {
			t.Fatal(err)
		}
	}
	// want reads key and checks the row and whether Pebble was read.
	want := func(key string, version uint64, deleted bool, value []byte, fromPebble bool) {
		t.Helper()
		before := s.rowReads.Load()
		row, found, err := s.Get(ctx, "t", []byte(key), 0)
		if err != nil || !found || row.Version != version || row.Deleted != deleted || !bytes.Equal(row.Value, value) {
			t.Fatalf("Get(%s) = %+v found=%v err=%v; want version %d deleted %v value %q", key, row, found, err, version, deleted, value)
		}
		if read := s.rowReads.Load() > before; read != fromPebble {
			t.Fatalf("Get(%s): read Pebble %v, want %v", key, read, fromPebble)
		}
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("a1"), Version: 10})
	want("a", 10, false, []byte("a1"), false)
	apply(store.Mutation{Key: []byte("a"), Value: []byte("stale"), Version: 5})
	want("a", 10, false, []byte("a1"), false)
	apply(store.Mutation{Key: []byte("a"), Version: 11, Delete: true})
	want("a", 11, true, nil, false)
	big := bytes.Repeat([]byte("x"), 1000) // more than a stripe's budget
	apply(store.Mutation{Key: []byte("a"), Value: big, Version: 12})
	want("a", 12, false, big, true)
	apply(store.Mutation{Key: []byte("b"), Value: []byte{}, Version: 1})
	want("b", 1, false, []byte{}, false)
	// GetMany serves the rows it holds from memory too.
	apply(store.Mutation{Key: []byte("c"), Value: []byte("c1"), Version: 3})
	before := s.rowReads.Load()
	reads, err := s.GetMany(ctx, "t", [][]byte{[]byte("b"), []byte("c")}, 0)
	if err != nil || len(reads) != 2 || reads[0].Row.Version != 1 || string(reads[1].Row.Value) != "c1" || !reads[1].Found {
		t.Fatalf("GetMany(b, c) = %+v, %v; want b@1 and c1@3", reads, err)
	}
	if n := s.rowReads.Load() - before; n != 0 {
		t.Fatalf("GetMany of two cached rows read Pebble %d times", n)
	}

	for i := range 20 * numStripes {
		apply(store.Mutation{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("0123456789"), Version: 1})
	}
	if n := s.cachedRowBytes(); n > budget || n < budget/2 {
		t.Errorf("row cache holds %d bytes, bound %d (and it was filled)", n, budget)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{RowCacheBytes: budget, NoSync: noSync})
	want("b", 1, false, []byte{}, true)
	apply(store.Mutation{Key: []byte("b"), Value: []byte("b2"), Version: 2})
	want("b", 2, false, []byte("b2"), false)
	if err := s.DropTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "t", []byte("b"), 0); err != nil || found {
		t.Fatalf("Get after DropTable: found=%v err=%v; want nothing", found, err)
	}
}

// TestRowCacheOff: with the cache off every Get reads Pebble.
func TestRowCacheOff(t *testing.T) {
	ctx := t.Context()
	s := openT(t, t.TempDir(), Options{RowCacheBytes: -1})
	defer s.Close()
	if err := s.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "t", []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := s.Get(ctx, "t", []byte("a"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.rowReads.Load(); n != 3 {
		t.Fatalf("%d Pebble reads for 3 Gets with the cache off", n)
	}
}

// TestPutRowBound: a stripe holds rows up to its bound inclusive: a row
// of exactly the bound is cached, rows whose sizes add up to exactly the
// bound are all kept, and one byte more evicts (or, alone, is not cached).
func TestPutRowBound(t *testing.T) {
	row := func(n int) cachedRow { return cachedRow{version: 1, value: bytes.Repeat([]byte("v"), n)} }
	const limit = 200
	// Keys of one byte: each row costs 1 + its value + rowOverhead.
	val := func(size int) int { return size - 1 - rowOverhead }
	for _, c := range []struct {
		name  string
		sizes []int // of the rows put, in order, under keys "a", "b", ...
		want  string
	}{
		{"one row of exactly the bound", []int{limit}, "[a]"},
		{"one row a byte over the bound", []int{limit + 1}, "[]"},
		{"two rows adding up to exactly the bound", []int{limit / 2, limit / 2}, "[a b]"},
		{"two rows a byte over the bound", []int{limit / 2, limit/2 + 1}, "[b]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Store{rowLimit: limit}
			total := 0
			for i, size := range c.sizes {
				s.putRow(0, string(rune('a'+i)), row(val(size)))
			}
			var keys []string
			for k, r := range s.stripes[0].rows {
				keys = append(keys, k)
				total += rowSize(k, r)
			}
			slices.Sort(keys)
			if fmt.Sprint(keys) != c.want || s.cachedRowBytes() != total || total > limit {
				t.Fatalf("cached %v (%d bytes, counted %d), want %s within %d", keys, total, s.cachedRowBytes(), c.want, limit)
			}
		})
	}
}

// TestUncachedReadWaitsForTheSync: with the row cache off, a Get (and a
// GetMany) reads Pebble, which already holds a batch whose WAL sync is
// held: the read must wait for the batch's flight (registered without rows
// to cache as well) and never return the batch's row before it is durable.
func TestUncachedReadWaitsForTheSync(t *testing.T) {
	fs := openFaulty(t, Options{RowCacheBytes: -1})
	mustApply(t, fs.Store, mut("k", 1))
	held := fs.HoldSync()
	applied := make(chan error, 1)
	go func() {
		_, err := fs.Apply(context.Background(), "t", []store.Mutation{mut("k", 2)})
		applied <- err
	}()
	select {
	case <-held:
	case err := <-applied:
		fs.ReleaseSync(false)
		t.Fatalf("Apply returned (%v) although its sync was held", err)
	}
	// Pebble serves the batch once it is in the memtable (before its sync).
	rk := rowKey("t", []byte("k"))
	for {
		v, _, err := fs.version(rk)
		if err != nil {
			t.Fatal(err)
		}
		if v == 2 {
			break
		}
		runtime.Gosched()
	}
	for _, many := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		var row store.Row
		var found bool
		var err error
		if many {
			var reads []store.KeyRead
			if reads, err = fs.GetMany(ctx, "t", [][]byte{[]byte("other"), []byte("k")}, 0); err == nil {
				row, found, err = reads[1].Row, reads[1].Found, reads[1].Err
			}
		} else {
			row, found, err = fs.Get(ctx, "t", []byte("k"), 0)
		}
		cancel()
		if err == nil && found && row.Version == 2 {
			fs.ReleaseSync(false)
			t.Fatalf("a read (GetMany: %v) returned version 2 while its sync was held", many)
		}
	}
	fs.ReleaseSync(false)
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if row, found, err := fs.Get(t.Context(), "t", []byte("k"), 0); err != nil || !found || row.Version != 2 {
		t.Fatalf("after the sync: %+v found=%v err=%v, want version 2", row, found, err)
	}
}
