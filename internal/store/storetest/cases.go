package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

func testBinary(t *testing.T, s store.Store) {
	create(t, s, "bin")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// Keys that are prefixes of each other or differ only in 0x00/0xff.
	keys := [][]byte{{0}, {0, 0}, {0xff}, {0xff, 0xff, 0xff}, []byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("a\xff"), all}
	values := [][]byte{{}, {0}, {0xff, 0, 0xff}, all, []byte("plain"), {}, {0, 0}, nil, []byte("\x00x")}
	muts := make([]store.Mutation, len(keys))
	for i, k := range keys {
		muts[i] = store.Mutation{Key: k, Value: values[i], Version: uint64(i + 1)}
	}
	for i, o := range apply(t, s, "bin", muts...) {
		checkOutcome(t, muts[i], o, true, 0)
	}
	for i, k := range keys {
		// An empty (or nil) value is a present row, not a tombstone.
		wantRow(t, s, "bin", k, uint64(i+1), false, values[i])
	}
	// Deleting the empty-valued key turns it into a tombstone.
	apply(t, s, "bin", store.Mutation{Key: keys[0], Version: 100, Delete: true})
	wantRow(t, s, "bin", keys[0], 100, true, nil)
	wantRow(t, s, "bin", keys[1], 2, false, values[1])
}

func testLarge(t *testing.T, s store.Store) {
	create(t, s, "large")
	r := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 4<<10)
	value := make([]byte, 1<<20)
	for i := range key {
		key[i] = byte(r.Uint32())
	}
	for i := range value {
		value[i] = byte(r.Uint32())
	}
	m := store.Mutation{Key: key, Value: value, Version: 1}
	checkOutcome(t, m, apply(t, s, "large", m)[0], true, 0)
	wantRow(t, s, "large", key, 1, false, value)
	// A key differing only in its last byte is a different row.
	other := slices.Clone(key)
	other[len(other)-1]++
	if _, found := get(t, s, "large", other); found {
		t.Errorf("4 KiB key with a different last byte was found")
	}
	m2 := store.Mutation{Key: key, Value: value[:1<<19], Version: 2}
	checkOutcome(t, m2, apply(t, s, "large", m2)[0], true, 1)
	wantRow(t, s, "large", key, 2, false, value[:1<<19])
}

// testNoAliasing: the store must neither keep the caller's slices nor hand
// out ones it reuses.
func testNoAliasing(t *testing.T, s store.Store) {
	create(t, s, "alias")
	key, value := []byte("key"), []byte("value")
	apply(t, s, "alias", store.Mutation{Key: key, Value: value, Version: 1})
	copy(key, "xxx")
	copy(value, "XXXXX")
	wantRow(t, s, "alias", []byte("key"), 1, false, []byte("value"))
	row, _ := get(t, s, "alias", []byte("key"))
	copy(row.Value, "ZZZZZ")
	wantRow(t, s, "alias", []byte("key"), 1, false, []byte("value"))
}

func testCreateTable(t *testing.T, s store.Store) {
	create(t, s, "twice")
	apply(t, s, "twice", put("k", 3, "v"))
	create(t, s, "twice") // idempotent, and keeps the rows
	wantRow(t, s, "twice", []byte("k"), 3, false, []byte("v"))
	for _, name := range []string{"", "Upper", "1abc", "a-b", "a b", "a\x00b", strings.Repeat("a", 64)} {
		if err := s.CreateTable(t.Context(), name); err == nil {
			t.Errorf("CreateTable(%q) succeeded, want an invalid-name error", name)
		}
	}
	if err := s.CreateTable(t.Context(), strings.Repeat("a", 63)); err != nil {
		t.Errorf("CreateTable(63 chars): %v", err)
	}
}

func testTableIsolation(t *testing.T, s store.Store) {
	// Names that are prefixes of each other.
	tables := []string{"iso", "iso_b", "isob"}
	for _, tb := range tables {
		create(t, s, tb)
	}
	for i, tb := range tables {
		apply(t, s, tb, put("k", uint64(10+i), tb), put("_b\x00k", uint64(10+i), tb))
	}
	apply(t, s, "iso", del("k", 20))
	wantRow(t, s, "iso", []byte("k"), 20, true, nil)
	for i, tb := range tables[1:] {
		wantRow(t, s, tb, []byte("k"), uint64(11+i), false, []byte(tb))
	}
	for i, tb := range tables {
		wantRow(t, s, tb, []byte("_b\x00k"), uint64(10+i), false, []byte(tb))
	}
	// A lower version in one table is judged against that table only.
	o := apply(t, s, "iso_b", put("only_iso", 1, "x"))
	apply(t, s, "iso", put("only_iso", 5, "y"))
	checkOutcome(t, put("only_iso", 1, "x"), o[0], true, 0)
	wantRow(t, s, "iso_b", []byte("only_iso"), 1, false, []byte("x"))
}

func testCatalog(t *testing.T, s store.Store) {
	ctx := t.Context()
	ts, err := s.Tables(ctx)
	if err != nil || len(ts) != 0 {
		t.Fatalf("Tables on a fresh store = %v, %v; want none", ts, err)
	}
	want := map[string][]byte{
		"alpha": []byte("spec-a"),
		"beta":  {0, 1, 0xff, 0},
		"gamma": {},
	}
	for _, name := range []string{"beta", "alpha", "gamma"} {
		if err := s.SaveTable(ctx, store.Table{Name: name, Spec: want[name]}); err != nil {
			t.Fatalf("SaveTable(%q): %v", name, err)
		}
	}
	want["beta"] = []byte("replaced")
	if err := s.SaveTable(ctx, store.Table{Name: "beta", Spec: want["beta"]}); err != nil {
		t.Fatalf("SaveTable(beta) again: %v", err)
	}
	ts, err = s.Tables(ctx)
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	got := map[string][]byte{}
	for _, tb := range ts {
		if _, dup := got[tb.Name]; dup {
			t.Errorf("Tables lists %q twice", tb.Name)
		}
		got[tb.Name] = tb.Spec
	}
	if len(got) != len(want) {
		t.Errorf("Tables returned %d entries, want %d: %v", len(got), len(want), ts)
	}
	for name, spec := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, spec) {
			t.Errorf("table %q: spec %q (present=%v), want %q", name, g, ok, spec)
		}
	}
}

// testLevels: every level finds a written row, the strongest at once,
// cheaper ones (replicas) within a lag bound; what a level returns is always
// a real row. A level that never finds anything fails.
func testLevels(t *testing.T, s store.Store) {
	levels := s.Levels()
	if len(levels) == 0 {
		t.Fatal("Levels() is empty")
	}
	create(t, s, "levels")
	apply(t, s, "levels", put("k", 7, "v"))
	const maxLag = 10 * time.Second
	for i, name := range levels {
		deadline := time.Now().Add(maxLag)
		for attempt := 0; ; attempt++ {
			row, found, err := s.Get(t.Context(), "levels", []byte("k"), store.Level(i))
			if err != nil {
				t.Errorf("Get at level %d (%s): %v", i, name, err)
				break
			}
			if found && (row.Version != 7 || string(row.Value) != "v" || row.Deleted) {
				t.Errorf("Get at level %d (%s): %+v, want version 7 value \"v\"", i, name, row)
			}
			if found {
				break
			}
			if i == len(levels)-1 {
				t.Errorf("Get at the strongest level %d (%s): not found", i, name)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("Get at level %d (%s): still not found %v after the write (%d reads): the level lags without bound or reads the wrong place", i, name, maxLag, attempt+1)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, found, err := s.Get(t.Context(), "levels", []byte("absent"), store.Level(i)); err != nil || found {
			t.Errorf("Get(absent) at level %d (%s): found=%v err=%v", i, name, found, err)
		}
	}
}

// testConcurrent: writers race on a few hot keys with versions drawn from a
// shared clock, jittered so that some writes arrive stale. Versions are
// unique (writer and sequence number in the low bits) and their lowest bit
// says whether the write is a delete. Checks: every Outcome is consistent;
// a read after an applied write sees that version or a newer one (no lost
// updates); the final state of each key is its highest version written, and
// that write reported Applied.
func testConcurrent(t *testing.T, s store.Store) {
	create(t, s, "hot")
	const writers, perWriter, nkeys = 8, 300, 3
	var clock atomic.Uint64
	var maxWritten, maxApplied [nkeys]atomic.Uint64
	raise := func(a *atomic.Uint64, v uint64) {
		for cur := a.Load(); v > cur && !a.CompareAndSwap(cur, v); cur = a.Load() {
		}
	}
	value := func(k int, v uint64) []byte { return fmt.Appendf(nil, "k%d@%d", k, v) }
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < perWriter; {
				// Batches of 1..nkeys mutations on distinct keys.
				n := 1 + r.IntN(min(nkeys, 3))
				var muts []store.Mutation
				var ks []int
				for _, k := range r.Perm(nkeys)[:n] {
					now := clock.Add(1) + 16
					now -= uint64(r.IntN(16)) // jitter: some writes are stale
					v := (now<<8|uint64(w))<<12 | uint64(i)
					v = v<<1 | uint64(r.IntN(4)/3)
					i++
					m := store.Mutation{Key: fmt.Appendf(nil, "hot%d", k), Version: v, Delete: v&1 == 1}
					if !m.Delete {
						m.Value = value(k, v)
					}
					raise(&maxWritten[k], v)
					muts = append(muts, m)
					ks = append(ks, k)
				}
				out, err := applyAgain(t, s, "hot", muts)
				if err != nil {
					t.Errorf("writer %d: Apply: %v", w, err)
					return
				}
				for j, o := range out {
					m := muts[j]
					switch {
					case o.Applied && o.Current != m.Version:
						t.Errorf("key %q version %d: applied with Current=%d", m.Key, m.Version, o.Current)
					case !o.Applied && o.Current != 0 && o.Current <= m.Version:
						t.Errorf("key %q version %d: not applied, but Current=%d is not higher", m.Key, m.Version, o.Current)
					}
					if !o.Applied {
						continue
					}
					raise(&maxApplied[ks[j]], m.Version)
					row, found, err := s.Get(t.Context(), "hot", m.Key, strongest(s))
					if err != nil || !found || row.Version < m.Version {
						t.Errorf("key %q: read after applied version %d: version %d found=%v err=%v (lost update)",
							m.Key, m.Version, row.Version, found, err)
					}
				}
			}
		})
	}
	wg.Wait()
	for k := range nkeys {
		key := fmt.Appendf(nil, "hot%d", k)
		mw, ma := maxWritten[k].Load(), maxApplied[k].Load()
		if mw == 0 {
			continue
		}
		if ma != mw {
			t.Errorf("key %q: highest version written %d, highest reported Applied %d", key, mw, ma)
		}
		wantRow(t, s, "hot", key, mw, mw&1 == 1, value(k, mw))
	}
}

// testClosed: after Close, every operation fails with store.ErrClosed, and
// a second Close is harmless.
func testClosed(t *testing.T, s store.Store) {
	create(t, s, "closed")
	apply(t, s, "closed", put("k", 1, "v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["apply"] = s.Apply(ctx, "closed", []store.Mutation{put("k", 2, "v")})
	_, _, checks["get"] = s.Get(ctx, "closed", []byte("k"), 0)
	checks["create"] = s.CreateTable(ctx, "other")
	checks["save"] = s.SaveTable(ctx, store.Table{Name: "other"})
	_, _, checks["swap"] = s.SwapTable(ctx, "other", nil, []byte("x"))
	checks["drop"] = s.DropTable(ctx, "closed")
	_, checks["tables"] = s.Tables(ctx)
	if sc, ok := s.(store.Scanner); ok {
		_, checks["scan"] = sc.ScanKeys(ctx, "closed", nil, 10)
	}
	if pd, ok := s.(store.PinnedDropper); ok {
		_, checks["drop pin"] = pd.DropPin(ctx, "closed")
		checks["pinned drop"] = pd.DropTablePinned(ctx, "closed", []byte("pin"))
	}
	for op, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
