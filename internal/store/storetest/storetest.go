// Package storetest is the acceptance suite every store.Store backend must
// pass: conditional last-writer-wins writes, tombstones, batches, binary and
// large keys and values, table isolation, the catalog and its atomic swaps,
// dropping tables (for a store.PinnedDropper, with a pin), schema ids kept with rows, read levels, concurrent
// writers, behaviour after Close, (for a store.Scanner) paged key scans, and the rule that a read never
// returns a write that is not durable (durable.go; stores that can hold
// their durability point for a test offer SyncHolder).
//
// A backend's test calls Run with a function that opens a fresh, empty store
// (a temporary directory, database or schema). Run closes every store it
// opens; Close may therefore be called twice on one store and the second
// call's error is ignored.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Run runs the suite; each subtest opens its own store with open. The
// cases that measure memory run first, one at a time (allocations of
// other tests would count); the others then run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name   string
		fn     func(t *testing.T, s store.Store)
		serial bool
	}{
		{"ScanMemory", testScanMemory, true},
		{"LastWriterWins", testLastWriterWins, false},
		{"Tombstones", testTombstones, false},
		{"Missing", testMissing, false},
		{"UnknownTable", testUnknownTable, false},
		{"Batch", testBatch, false},
		{"BatchDuplicates", testBatchDuplicates, false},
		{"Binary", testBinary, false},
		{"Large", testLarge, false},
		{"NoAliasing", testNoAliasing, false},
		{"CreateTable", testCreateTable, false},
		{"TableIsolation", testTableIsolation, false},
		{"Catalog", testCatalog, false},
		{"SwapTable", testSwapTable, false},
		{"SwapTableRace", testSwapTableRace, false},
		{"CatalogEntry", testCatalogEntry, false},
		{"DropTable", testDropTable, false},
		{"PinnedDrop", testPinnedDrop, false},
		{"Levels", testLevels, false},
		{"Concurrent", testConcurrent, false},
		{"Closed", testClosed, false},
		{"Scan", testScan, false},
		{"ScanConcurrent", testScanConcurrent, false},
		{"DurableReads", testDurableReads, false},
		{"MultiGet", testMultiGet, false},
		{"SchemaIDs", testSchemaIDs, false},
		{"MultiGetMore", testMultiGetMore, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.serial {
				t.Parallel() // runs once Run has returned, after the serial cases
			}
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// --- helpers ---------------------------------------------------------------

func create(t *testing.T, s store.Store, table string) {
	t.Helper()
	if err := s.CreateTable(t.Context(), table); err != nil {
		t.Fatalf("CreateTable(%q): %v", table, err)
	}
}

func apply(t *testing.T, s store.Store, table string, muts ...store.Mutation) []store.Outcome {
	t.Helper()
	out, err := applyAgain(t, s, table, muts)
	if err != nil {
		t.Fatalf("Apply(%q, %d mutations): %v", table, len(muts), err)
	}
	if len(out) != len(muts) {
		t.Fatalf("Apply(%q): %d outcomes for %d mutations", table, len(out), len(muts))
	}
	return out
}

// applyAgain is Apply, tried again (at most applyTries times in all,
// backing off) while the store answers ErrUnavailable: a loaded cluster
// times writes out (Cassandra's write_request_timeout) and a client
// repeats them, which the versions make harmless. A key an earlier try
// wrote is reported applied: the store holds its version and its content.
// A store may report such a key not applied with Current 0 (its version is
// not higher than the mutation's), so the key is read back to tell. (The
// cases that write a version equal to the stored one write other content,
// so that a try after a timed-out one can tell its own write.)
func applyAgain(t *testing.T, s store.Store, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.Apply(t.Context(), table, muts)
	for try := 1; errors.Is(err, store.ErrUnavailable) && try < applyTries; try++ {
		t.Logf("Apply(%q, %d mutations), try %d of %d: %v; again", table, len(muts), try, applyTries, err)
		time.Sleep(applyBackoff << try)
		if out, err = s.Apply(t.Context(), table, muts); err == nil {
			for i, o := range out {
				if !o.Applied && (o.Current == 0 || o.Current == muts[i].Version) && holds(t, s, table, muts[i]) {
					out[i] = store.Outcome{Applied: true, Current: muts[i].Version}
				}
			}
		}
	}
	return out, err
}

// holds reports whether the key holds m: its version, whether it is a
// tombstone, and its value, read at the strongest level (false if the read
// fails: the caller's checks then report it).
func holds(t *testing.T, s store.Store, table string, m store.Mutation) bool {
	row, found, err := s.Get(t.Context(), table, m.Key, strongest(s))
	return err == nil && found && row.Version == m.Version && row.Deleted == m.Delete && (m.Delete || bytes.Equal(row.Value, m.Value))
}

// applyBackoff is applyAgain's first pause; it doubles on every try.
var applyBackoff = 100 * time.Millisecond

// applyTries bounds applyAgain.
const applyTries = 5

// strongest is the level every read-your-writes check uses.
func strongest(s store.Store) store.Level { return store.Level(len(s.Levels()) - 1) }

func get(t *testing.T, s store.Store, table string, key []byte) (store.Row, bool) {
	t.Helper()
	row, found, err := s.Get(t.Context(), table, key, strongest(s))
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", table, key, err)
	}
	return row, found
}

func put(key string, v uint64, value string) store.Mutation {
	return store.Mutation{Key: []byte(key), Value: []byte(value), Version: v}
}

func del(key string, v uint64) store.Mutation {
	return store.Mutation{Key: []byte(key), Version: v, Delete: true}
}

// checkOutcome: an applied mutation reports its own version; one that was
// not applied reports the winning version or 0 (stored is what the key held).
func checkOutcome(t *testing.T, m store.Mutation, got store.Outcome, wantApplied bool, stored uint64) {
	t.Helper()
	switch {
	case got.Applied != wantApplied:
		t.Errorf("key %q version %d: Applied=%v, want %v (stored version %d)", m.Key, m.Version, got.Applied, wantApplied, stored)
	case got.Applied && got.Current != m.Version:
		t.Errorf("key %q version %d: applied with Current=%d, want %d", m.Key, m.Version, got.Current, m.Version)
	case !got.Applied && got.Current != 0 && got.Current != stored:
		t.Errorf("key %q version %d: not applied, Current=%d, want %d (or 0)", m.Key, m.Version, got.Current, stored)
	}
}

// wantRow checks a key's state; value is ignored for tombstones.
func wantRow(t *testing.T, s store.Store, table string, key []byte, version uint64, deleted bool, value []byte) {
	t.Helper()
	row, found := get(t, s, table, key)
	switch {
	case !found:
		t.Errorf("key %q: not found, want version %d (deleted=%v)", key, version, deleted)
	case row.Version != version || row.Deleted != deleted:
		t.Errorf("key %q: version %d deleted=%v, want version %d deleted=%v", key, row.Version, row.Deleted, version, deleted)
	case deleted && len(row.Value) != 0:
		t.Errorf("key %q: tombstone at version %d has a %d-byte value", key, version, len(row.Value))
	case !deleted && !bytes.Equal(row.Value, value):
		t.Errorf("key %q version %d: value %s, want %s", key, version, short(row.Value), short(value))
	}
}

func short(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q...(%d bytes)", b[:32], len(b))
}

// --- tests -----------------------------------------------------------------

func testLastWriterWins(t *testing.T, s store.Store) {
	create(t, s, "lww")
	tests := []struct {
		name        string
		first, then uint64
		applied     bool
	}{
		{"higher", 10, 11, true},
		{"much_higher", 10, 1<<63 - 1, true},
		{"equal", 10, 10, false},
		{"lower", 10, 9, false},
		{"lowest", 1 << 40, 1, false},
	}
	for _, tc := range tests {
		key := "k_" + tc.name
		first := put(key, tc.first, "first")
		checkOutcome(t, first, apply(t, s, "lww", first)[0], true, tc.first)
		then := put(key, tc.then, "then")
		checkOutcome(t, then, apply(t, s, "lww", then)[0], tc.applied, tc.first)
		if tc.applied {
			wantRow(t, s, "lww", []byte(key), tc.then, false, []byte("then"))
		} else {
			wantRow(t, s, "lww", []byte(key), tc.first, false, []byte("first"))
		}
	}
}

func testTombstones(t *testing.T, s store.Store) {
	create(t, s, "tomb")
	type step struct {
		m       store.Mutation
		applied bool
	}
	tests := []struct {
		name  string
		steps []step
		// final state
		version uint64
		deleted bool
		value   string
	}{
		{"delete_existing", []step{{put("a", 5, "v"), true}, {del("a", 6), true}}, 6, true, ""},
		{"delete_never_written", []step{{del("b", 7), true}}, 7, true, ""},
		{"revive_higher", []step{{put("c", 5, "v"), true}, {del("c", 6), true}, {put("c", 7, "w"), true}}, 7, false, "w"},
		{"put_below_tombstone", []step{{del("d", 6), true}, {put("d", 5, "v"), false}}, 6, true, ""},
		{"put_equal_tombstone", []step{{del("e", 6), true}, {put("e", 6, "v"), false}}, 6, true, ""},
		{"delete_below_put", []step{{put("f", 6, "v"), true}, {del("f", 5), false}}, 6, false, "v"},
		{"delete_ignores_value", []step{{store.Mutation{Key: []byte("g"), Value: []byte("x"), Version: 3, Delete: true}, true}}, 3, true, ""},
		{"delete_twice", []step{{del("h", 3), true}, {del("h", 4), true}, {del("h", 2), false}}, 4, true, ""},
	}
	for _, tc := range tests {
		var stored uint64
		for _, st := range tc.steps {
			checkOutcome(t, st.m, apply(t, s, "tomb", st.m)[0], st.applied, stored)
			if st.applied {
				stored = st.m.Version
			}
		}
		key := tc.steps[0].m.Key
		wantRow(t, s, "tomb", key, tc.version, tc.deleted, []byte(tc.value))
	}
}

func testMissing(t *testing.T, s store.Store) {
	create(t, s, "missing")
	apply(t, s, "missing", put("present", 1, "x"))
	for _, key := range [][]byte{[]byte("absent"), []byte("presen"), []byte("present\x00"), {0}, {0xff}} {
		row, found, err := s.Get(t.Context(), "missing", key, strongest(s))
		if err != nil || found || !reflect.DeepEqual(row, store.Row{}) {
			t.Errorf("Get(%q) = %+v, %v, %v; want zero Row, false, nil", key, row, found, err)
		}
	}
}

func testUnknownTable(t *testing.T, s store.Store) {
	create(t, s, "known")
	ctx := t.Context()
	if _, err := s.Apply(ctx, "never_created", []store.Mutation{put("k", 1, "v")}); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Apply on unknown table: %v, want ErrUnknownTable", err)
	}
	if _, _, err := s.Get(ctx, "never_created", []byte("k"), strongest(s)); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Get on unknown table: %v, want ErrUnknownTable", err)
	}
	// A catalog entry alone does not create the table.
	if err := s.SaveTable(ctx, store.Table{Name: "only_catalog", Spec: []byte("x")}); err != nil {
		t.Fatalf("SaveTable: %v", err)
	}
	if _, err := s.Apply(ctx, "only_catalog", []store.Mutation{put("k", 1, "v")}); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Apply on catalog-only table: %v, want ErrUnknownTable", err)
	}
}

func testBatch(t *testing.T, s store.Store) {
	create(t, s, "batch")
	// Seed even keys at version 100.
	const n = 300
	var seed []store.Mutation
	for i := 0; i < n; i += 2 {
		seed = append(seed, put(fmt.Sprintf("k%03d", i), 100, "seed"))
	}
	apply(t, s, "batch", seed...)

	// One mutation per key: version 50 (stale for seeded keys) or 150,
	// deletes on every third key.
	muts := make([]store.Mutation, n)
	for i := range muts {
		v := uint64(150)
		if i%5 == 0 {
			v = 50
		}
		key := fmt.Sprintf("k%03d", i)
		if i%3 == 0 {
			muts[i] = del(key, v)
		} else {
			muts[i] = put(key, v, fmt.Sprintf("val%d", i))
		}
	}
	// Reverse so the order is not the key order.
	slices.Reverse(muts)
	out := apply(t, s, "batch", muts...)
	for i, m := range muts {
		var k int
		fmt.Sscanf(string(m.Key), "k%d", &k)
		stored := uint64(0)
		if k%2 == 0 {
			stored = 100
		}
		applied := m.Version > stored
		checkOutcome(t, m, out[i], applied, stored)
		switch {
		case applied:
			wantRow(t, s, "batch", m.Key, m.Version, m.Delete, m.Value)
		default:
			wantRow(t, s, "batch", m.Key, 100, false, []byte("seed"))
		}
	}
}

func testBatchDuplicates(t *testing.T, s store.Store) {
	create(t, s, "dups")
	tests := []struct {
		name     string
		stored   uint64 // 0: key absent before the batch
		versions []uint64
		deletes  []bool // parallel to versions; nil means all puts
	}{
		{"ascending", 0, []uint64{5, 7, 9}, nil},
		{"descending", 0, []uint64{9, 7, 5}, nil},
		{"middle", 0, []uint64{5, 9, 7}, nil},
		{"delete_wins", 0, []uint64{5, 9, 7}, []bool{false, true, false}},
		{"put_beats_delete", 0, []uint64{9, 5}, []bool{false, true}},
		{"all_stale", 10, []uint64{9, 3, 10}, nil},
		{"some_stale", 10, []uint64{9, 12, 11}, nil},
	}
	for _, tc := range tests {
		key := "dup_" + tc.name
		if tc.stored > 0 {
			apply(t, s, "dups", put(key, tc.stored, "stored"))
		}
		// Interleave another key so duplicates are not adjacent.
		var muts []store.Mutation
		best := -1
		for i, v := range tc.versions {
			m := put(key, v, fmt.Sprintf("v%d", v))
			if tc.deletes != nil && tc.deletes[i] {
				m = del(key, v)
			}
			muts = append(muts, m, put(fmt.Sprintf("%s_other%d", key, i), 1, "o"))
			if best < 0 || v > muts[best].Version {
				best = len(muts) - 2
			}
		}
		out := apply(t, s, "dups", muts...)
		winner := muts[best]
		final := max(tc.stored, winner.Version)
		for i, m := range muts {
			if !bytes.Equal(m.Key, []byte(key)) {
				checkOutcome(t, m, out[i], true, 0)
				continue
			}
			checkOutcome(t, m, out[i], i == best && winner.Version > tc.stored, final)
		}
		if winner.Version > tc.stored {
			wantRow(t, s, "dups", []byte(key), winner.Version, winner.Delete, winner.Value)
		} else {
			wantRow(t, s, "dups", []byte(key), tc.stored, false, []byte("stored"))
		}
	}
}
