package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// The cases of store.Scanner; a store without it skips them.

func scanner(t *testing.T, s store.Store) store.Scanner {
	t.Helper()
	sc, ok := s.(store.Scanner)
	if !ok {
		t.Skip("the store does not implement store.Scanner")
	}
	return sc
}

// scanAll pages through a table with pages of limit keys and returns
// every key listed, failing on a key listed twice or a page over limit.
// between, if set, runs between pages.
func scanAll(t *testing.T, sc store.Scanner, table string, limit int, between func()) map[string]store.KeyVersion {
	t.Helper()
	all := map[string]store.KeyVersion{}
	var after []byte
	for pages := 0; ; pages++ {
		page, err := sc.ScanKeys(t.Context(), table, after, limit)
		if err != nil {
			t.Fatalf("ScanKeys(%q, after %q, %d): %v", table, after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("ScanKeys(limit %d) returned %d keys", limit, len(page))
		}
		for _, kv := range page {
			if _, dup := all[string(kv.Key)]; dup {
				t.Fatalf("key %q listed twice (page %d)", kv.Key, pages)
			}
			all[string(kv.Key)] = kv
		}
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1].Key
		if between != nil {
			between()
		}
	}
}

func testScan(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	create(t, s, "scan")
	create(t, s, "scan_other")
	ctx := t.Context()
	if page, err := sc.ScanKeys(ctx, "scan", nil, 10); err != nil || len(page) != 0 {
		t.Fatalf("empty table: %v, %v", page, err)
	}
	want := map[string]store.KeyVersion{}
	var muts []store.Mutation
	for i := range 103 {
		k := fmt.Appendf(nil, "k%03d", i)
		if i%10 == 0 {
			k = []byte{byte(i), 0, 0xff} // binary keys, some sharing prefixes
		}
		m := store.Mutation{Key: k, Value: []byte("v"), Version: uint64(1000 + i), Delete: i%7 == 3}
		muts = append(muts, m)
		want[string(k)] = store.KeyVersion{Key: k, Version: m.Version, Deleted: m.Delete}
	}
	apply(t, s, "scan", muts...)
	apply(t, s, "scan", put("k001", 5000, "newer"), del("k002", 5001), put("k003", 5002, "revived"))
	want["k001"] = store.KeyVersion{Key: []byte("k001"), Version: 5000}
	want["k002"] = store.KeyVersion{Key: []byte("k002"), Version: 5001, Deleted: true}
	want["k003"] = store.KeyVersion{Key: []byte("k003"), Version: 5002}
	apply(t, s, "scan_other", put("elsewhere", 1, "x"))

	for _, limit := range []int{1, 7, 103, 1000} {
		got := scanAll(t, sc, "scan", limit, nil)
		if len(got) != len(want) {
			t.Errorf("limit %d: %d keys, want %d", limit, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(g.Key, w.Key) || g.Version != w.Version || g.Deleted != w.Deleted {
				t.Errorf("limit %d: key %q: got %+v (listed %v), want %+v", limit, k, g, ok, w)
			}
		}
	}
	// A page after a key that became a tombstone starts at the next one.
	first, err := sc.ScanKeys(ctx, "scan", nil, 2)
	if err != nil || len(first) != 2 {
		t.Fatalf("first page: %v, %v", first, err)
	}
	apply(t, s, "scan", store.Mutation{Key: first[0].Key, Version: 9000, Delete: true})
	next, err := sc.ScanKeys(ctx, "scan", first[0].Key, 1)
	if err != nil || len(next) != 1 || !bytes.Equal(next[0].Key, first[1].Key) {
		t.Errorf("page after %q: %v, %v; want %q", first[0].Key, next, err, first[1].Key)
	}
	if _, err := sc.ScanKeys(ctx, "never_created", nil, 10); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("unknown table: %v, want ErrUnknownTable", err)
	}
	for _, limit := range []int{0, -1} {
		if _, err := sc.ScanKeys(ctx, "scan", nil, limit); !errors.Is(err, store.ErrBadLimit) {
			t.Errorf("limit %d: %v, want ErrBadLimit", limit, err)
		}
	}
}

// testScanMemory: a page costs memory for its keys, not for the values of
// the rows or the size of the table.
func testScanMemory(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	create(t, s, "scan_mem")
	// 2 MiB of values: small enough that an embedded store keeps them in
	// memory without flushing (background work would count as ours).
	const rows, valueBytes = 8, 256 << 10
	value := bytes.Repeat([]byte("x"), valueBytes)
	// One write per row: Pebble sends a batch over half a memtable to disk
	// as a table of its own, whose value blocks a scan then reads (its
	// versions are in the values), and with a small block cache it reads
	// them again on every page.
	for i := range rows {
		apply(t, s, "scan_mem", store.Mutation{Key: fmt.Appendf(nil, "m%03d", i), Value: value, Version: 1})
	}
	if _, err := sc.ScanKeys(t.Context(), "scan_mem", nil, 4); err != nil { // warm connections and caches
		t.Fatal(err)
	}
	// The least of a few tries: background work of the store allocates too.
	least := uint64(1 << 62)
	for try := 0; try < 20 && least > valueBytes; try++ {
		if try > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		page, err := sc.ScanKeys(t.Context(), "scan_mem", nil, 4)
		runtime.ReadMemStats(&after)
		if err != nil || len(page) != 4 {
			t.Fatalf("ScanKeys: %d keys, %v", len(page), err)
		}
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	// Reading the values would allocate 1 MiB each time.
	if least > valueBytes {
		t.Errorf("a page of 4 keys allocated %d bytes: values are read", least)
	}
}

// testScanConcurrent: while writers raise versions of existing keys and
// add new ones, a paged scan lists every key that existed before it
// exactly once, at a version at least the one it had then.
func testScanConcurrent(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	create(t, s, "scan_live")
	const keys = 300
	var muts []store.Mutation
	for i := range keys {
		muts = append(muts, put(fmt.Sprintf("live%04d", i), 10, "seed"))
	}
	apply(t, s, "scan_live", muts...)
	var stop atomic.Bool
	var wrote atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				v := uint64(100 + i)
				ms := []store.Mutation{
					put(fmt.Sprintf("live%04d", (i*7+w)%keys), v, "update"),
					// At most keys new keys per writer (then updates): they sort
					// after the live ones, and a scan must be able to reach the end.
					put(fmt.Sprintf("new%d-%06d", w, i%keys), v, "new"),
				}
				if i%5 == 0 {
					ms[0] = del(fmt.Sprintf("live%04d", (i*7+w)%keys), v)
				}
				if _, err := applyAgain(t, s, "scan_live", ms); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				wrote.Add(1)
			}
		})
	}
	// Every page waits for a write batch to land, so the scan and the
	// writes interleave for sure.
	waitWrite := func() {
		for n := wrote.Load(); wrote.Load() == n && !t.Failed(); {
			runtime.Gosched()
		}
	}
	waitWrite()
	got := scanAll(t, sc, "scan_live", 16, waitWrite)
	stop.Store(true)
	wg.Wait()
	for i := range keys {
		k := fmt.Sprintf("live%04d", i)
		if kv, ok := got[k]; !ok || kv.Version < 10 {
			t.Errorf("key %q: listed %v at version %d, want listed at >= 10", k, ok, kv.Version)
		}
	}
}
