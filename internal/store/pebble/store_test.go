package pebble

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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
		!errors.Is(err, store.ErrUnknownTable) || !errors.Is(err, store.ErrNotApplied) || err.Error() != "pebble: apply zz: write not applied: unknown table" {
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

// TestLayoutGolden pins the on-disk layout (see the package comment) with
// literal bytes, read from Pebble directly rather than through the
// package's own encoders and decoders.
func TestLayoutGolden(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateTable(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	mustApply := func(m store.Mutation) {
		t.Helper()
		if _, err := s.Apply(ctx, "users", []store.Mutation{m}); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(store.Mutation{Key: []byte("alice"), Value: []byte("a1"), Version: 0x02e8494317b00201})
	mustApply(store.Mutation{Key: []byte("bob"), Value: []byte("ignored"), Version: 0x02e8494317b00601, Delete: true})
	mustApply(store.Mutation{Key: []byte{0, 0xff}, Value: []byte{}, Version: 7})
	if err := s.SaveTable(ctx, store.Table{Name: "users", Spec: []byte{0x0a, 0x05}}); err != nil {
		t.Fatal(err)
	}
	golden := []struct{ key, value string }{ // hex, in key order
		{hexOf("c/users"), "0a05"},
		{hexOf("r/users\x00\x00\xff"), "0000000000000007" + "00"},
		{hexOf("r/users\x00alice"), "02e8494317b00201" + "00" + "6131"},
		{hexOf("r/users\x00bob"), "02e8494317b00601" + "01"},
		{hexOf("t/users"), ""},
	}
	var got []struct{ key, value string }
	it, err := s.db.NewIter(nil) // every key Pebble holds
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, struct{ key, value string }{hex.EncodeToString(it.Key()), hex.EncodeToString(it.Value())})
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, golden) {
		t.Errorf("on-disk keys and values:\n got  %v\n want %v", got, golden)
	}
	// And the decoder reads the literal bytes.
	for _, tc := range []struct {
		hex  string
		want store.Row
	}{
		{"02e8494317b00201" + "00" + "6131", store.Row{Value: []byte("a1"), Version: 0x02e8494317b00201}},
		{"02e8494317b00601" + "01", store.Row{Version: 0x02e8494317b00601, Deleted: true}},
		{"0000000000000007" + "00", store.Row{Value: []byte{}, Version: 7}},
		// With a schema id: the id, then the value (none: exactly 13 bytes).
		{"0000000000000008" + "02" + "0000000b" + "6132", store.Row{Value: []byte("a2"), Version: 8, SchemaID: 11}},
		{"0000000000000009" + "02" + "ffffffff", store.Row{Value: []byte{}, Version: 9, SchemaID: 1<<32 - 1}},
	} {
		b, _ := hex.DecodeString(tc.hex)
		row, err := decodeRow(b)
		if err != nil || !reflect.DeepEqual(row, tc.want) {
			t.Errorf("decodeRow(%s) = %+v, %v; want %+v", tc.hex, row, err, tc.want)
		}
	}
	for _, bad := range []struct{ hex, msg string }{
		{"", "0-byte value, want at least 9"},
		{"02e8494317b006", "7-byte value, want at least 9"},
		{"02e8494317b00601" + "02", "9-byte value with a schema id, want at least 13"},
		{"02e8494317b00601" + "02" + "000000", "12-byte value with a schema id, want at least 13"},
		{"02e8494317b00601" + "03", "unknown flags 0x3"},
	} {
		b, _ := hex.DecodeString(bad.hex)
		if _, err := decodeRow(b); err == nil || err.Error() != bad.msg {
			t.Errorf("decodeRow(%q): %v, want the error %q", bad.hex, err, bad.msg)
		}
	}
}

func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

// TestPlan: duplicate keys in one batch resolve to the highest version, and
// on a tie to the earliest mutation (package comment of Apply).
func TestPlan(t *testing.T) {
	s := openT(t, t.TempDir(), Options{NoSync: true})
	defer s.Close()
	type m struct {
		key string
		v   uint64
	}
	for _, tc := range []struct {
		name     string
		muts     []m
		winnerOf []int
	}{
		{"single", []m{{"a", 1}}, []int{0}},
		{"distinct", []m{{"a", 1}, {"b", 1}}, []int{0, 1}},
		{"higher_later", []m{{"a", 1}, {"a", 2}}, []int{1, 1}},
		{"higher_earlier", []m{{"a", 2}, {"a", 1}}, []int{0, 0}},
		{"tie", []m{{"a", 5}, {"a", 5}}, []int{0, 0}},
		{"tie_of_three", []m{{"a", 5}, {"b", 1}, {"a", 5}, {"a", 5}}, []int{0, 1, 0, 0}},
		{"tie_after_lower", []m{{"a", 3}, {"a", 5}, {"a", 5}}, []int{1, 1, 1}},
		{"tie_below_max", []m{{"a", 5}, {"a", 5}, {"a", 9}}, []int{2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			muts := make([]store.Mutation, len(tc.muts))
			for i, x := range tc.muts {
				muts[i] = store.Mutation{Key: []byte(x.key), Value: fmt.Appendf(nil, "#%d", i), Version: x.v}
			}
			winners, winnerOf := s.plan("t", muts)
			if !slices.Equal(winnerOf, tc.winnerOf) {
				t.Errorf("winnerOf = %v, want %v", winnerOf, tc.winnerOf)
			}
			distinct := map[int]bool{}
			for _, w := range tc.winnerOf {
				distinct[w] = true
			}
			if len(winners) != len(distinct) {
				t.Errorf("%d winners, want %d", len(winners), len(distinct))
			}
			for _, w := range winners {
				if !distinct[w.idx] || !bytes.Equal(w.rowKey, rowKey("t", muts[w.idx].Key)) {
					t.Errorf("winner %+v is not one of %v", w, tc.winnerOf)
				}
			}
			// Through Apply: the winner's value is stored.
			table := "plan_" + tc.name
			if err := s.CreateTable(t.Context(), table); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Apply(t.Context(), table, muts); err != nil {
				t.Fatal(err)
			}
			for i, x := range tc.muts {
				w := tc.winnerOf[i]
				row, _, err := s.Get(t.Context(), table, []byte(x.key), 0)
				if err != nil || string(row.Value) != fmt.Sprintf("#%d", w) {
					t.Errorf("key %s: value %q, %v; want the winner's #%d", x.key, row.Value, err, w)
				}
			}
		})
	}
}

// TestCacheBytes: reads are served from a block cache of
// Options.CacheBytes, or of Pebble's default size when it is 0. (Pebble
// charges its memtables to the block cache, so the default 8 MiB caches
// nothing once they have grown to 4 MiB each; the test keeps them small.)
func TestCacheBytes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cacheBytes int64
		rows       int
		min        int64 // bytes the cache must hold after two reads of every row
	}{
		{"default", 0, 128, 256 << 10},     // 512 KiB of rows
		{"32MiB", 32 << 20, 2048, 6 << 20}, // 8 MiB of rows: more than Pebble's default cache
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Without the row cache, so that the reads go to Pebble.
			s := openT(t, t.TempDir(), Options{CacheBytes: tc.cacheBytes, NoSync: true, RowCacheBytes: -1})
			defer s.Close()
			ctx := t.Context()
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			const size = 4 << 10
			for i := 0; i < tc.rows; i += 64 {
				var muts []store.Mutation
				for j := i; j < i+64; j++ {
					v := make([]byte, size) // random: compression keeps it 4 KiB
					for k := range v {
						v[k] = byte(r.Uint32())
					}
					muts = append(muts, store.Mutation{Key: fmt.Appendf(nil, "k%04d", j), Value: v, Version: 1})
				}
				if _, err := s.Apply(ctx, "t", muts); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.db.Flush(); err != nil { // reads now come from sstables, through the cache
				t.Fatal(err)
			}
			// Settle the LSM first: an automatic compaction ending during
			// the reads deletes the files whose blocks the cache holds
			// (their blocks leave the cache), and on a loaded machine one
			// did, leaving 4.4 of the 8 MiB read.
			if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the cache keeps a block read twice
				for i := range tc.rows {
					if _, found, err := s.Get(ctx, "t", fmt.Appendf(nil, "k%04d", i), 0); err != nil || !found {
						t.Fatalf("k%04d: found=%v err=%v", i, found, err)
					}
				}
			}
			m := s.db.Metrics().BlockCache
			t.Logf("%+v compactions=%d", m, s.db.Metrics().Compact.Count)
			if m.Size < tc.min || m.Hits == 0 {
				t.Errorf("block cache holds %d bytes (%d hits) after reading %d KiB twice, want at least %d bytes", m.Size, m.Hits, tc.rows*size>>10, tc.min)
			}
		})
	}
}

// rowKeysSink keeps rowKeys' result alive in TestRowKeys, so that the
// compiler cannot drop its allocations.
var rowKeysSink [][]byte

// TestRowKeys: rowKeys builds the row keys rowKey builds, each capped at
// its own length (an append to one never overwrites the next), in one
// buffer allocated once (plus the slice of keys): for the shortest and
// longest table names, with keys shorter and longer than the name.
func TestRowKeys(t *testing.T) {
	long := strings.Repeat("n", 63) // the longest valid table name
	for _, tc := range []struct {
		table string
		keys  []string
	}{
		{"t", []string{"k"}},
		{"t", []string{"", "a", strings.Repeat("k", 1000)}},
		{long, []string{"", "k"}},
		{long, []string{"k", strings.Repeat("k", 200), ""}},
	} {
		keys := make([][]byte, len(tc.keys))
		for i, k := range tc.keys {
			keys[i] = []byte(k)
		}
		rks := rowKeys(tc.table, keys)
		if len(rks) != len(keys) {
			t.Fatalf("table %d bytes: %d row keys for %d keys", len(tc.table), len(rks), len(keys))
		}
		for i, k := range keys {
			if want := rowKey(tc.table, k); !bytes.Equal(rks[i], want) || cap(rks[i]) != len(rks[i]) {
				t.Errorf("table %d bytes, key %d bytes: row key %q (cap %d), want %q (cap its length)", len(tc.table), len(k), rks[i], cap(rks[i]), want)
			}
		}
		if n := testing.AllocsPerRun(20, func() { rowKeysSink = rowKeys(tc.table, keys) }); n != 2 {
			t.Errorf("table %d bytes, %d keys: %v allocations, want 2 (the buffer and the slice)", len(tc.table), len(keys), n)
		}
	}
}

// TestApplyAllocs: a batch of keys already written costs about two
// allocations per key (its row key, shared by the versions, rows and
// flights maps, and the cached copy of its value), not one per map. The
// bound leaves room for Pebble's own per-batch allocations; before the maps
// shared their keys it was 5.9 per key.
func TestApplyAllocs(t *testing.T) {
	const n = 1000
	s := openT(t, t.TempDir(), Options{NoSync: true})
	defer s.Close()
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	muts := make([]store.Mutation, n)
	value := make([]byte, 100)
	for i := range muts {
		muts[i] = store.Mutation{Key: fmt.Appendf(nil, "k%06d", i), Value: value}
	}
	version := uint64(0)
	apply := func() {
		version++
		for i := range muts {
			muts[i].Version = version
		}
		out, err := s.Apply(t.Context(), "t", muts)
		if err != nil || !out[0].Applied || !out[n-1].Applied {
			t.Fatalf("Apply at version %d: %v, %+v", version, err, out[0])
		}
	}
	apply() // the keys are in the maps
	if got := testing.AllocsPerRun(10, apply) / n; got > 3 {
		t.Errorf("%.2f allocations per key of a batch of %d, want at most 3", got, n)
	}
}
