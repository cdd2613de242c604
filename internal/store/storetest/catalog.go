package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

func swap(t *testing.T, s store.Store, name string, old, new []byte) ([]byte, bool) {
	t.Helper()
	cur, ok, err := s.SwapTable(t.Context(), name, old, new)
	if err != nil {
		t.Fatalf("SwapTable(%q, %q, %q): %v", name, old, new, err)
	}
	return cur, ok
}

// catalogEntry returns the spec Tables lists for name (nil: absent).
func catalogEntry(t *testing.T, s store.Store, name string) []byte {
	t.Helper()
	ts, err := s.Tables(t.Context())
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	for _, tb := range ts {
		if tb.Name == name {
			return tb.Spec
		}
	}
	return nil
}

// testSwapTable: create if absent, compare-and-set, compare-and-delete,
// each refused (with the entry found) when the entry is not what the
// caller expects.
func testSwapTable(t *testing.T, s store.Store) {
	a, b, c := []byte("spec-a"), []byte{0, 1, 0xff}, []byte("spec-c")
	steps := []struct {
		name     string
		old, new []byte
		swapped  bool
		current  []byte // what SwapTable reports
		after    []byte // what Tables lists afterwards (nil: absent)
	}{
		{"create", nil, a, true, a, a},
		{"create_taken", nil, b, false, a, a},
		{"set_stale", b, c, false, a, a},
		{"set", a, b, true, b, b},
		{"set_same", b, b, true, b, b},
		{"delete_stale", a, nil, false, b, b},
		{"delete", b, nil, true, nil, nil},
		{"delete_absent", b, nil, false, nil, nil},
		{"set_absent", b, c, false, nil, nil},
		{"create_again", nil, c, true, c, c},
	}
	for _, st := range steps {
		cur, ok := swap(t, s, "swapped", st.old, st.new)
		if ok != st.swapped || !bytes.Equal(cur, st.current) || (cur == nil) != (st.current == nil) {
			t.Errorf("%s: SwapTable(%q -> %q) = %q, %v; want %q, %v", st.name, st.old, st.new, cur, ok, st.current, st.swapped)
		}
		if got := catalogEntry(t, s, "swapped"); !bytes.Equal(got, st.after) || (got == nil) != (st.after == nil) {
			t.Errorf("%s: Tables lists %q, want %q", st.name, got, st.after)
		}
	}
	if _, _, err := s.SwapTable(t.Context(), "Bad-Name", nil, a); err == nil {
		t.Error("SwapTable with an invalid name succeeded")
	}
	if got := catalogEntry(t, s, "other"); got != nil {
		t.Errorf("a swap of one name touched another: %q", got)
	}
}

// testSwapTableRace: many creators of one name, each with its own spec;
// exactly one wins and every loser is told the winner's spec.
func testSwapTableRace(t *testing.T, s store.Store) {
	const n = 16
	for round := range 3 {
		name := fmt.Sprintf("race%d", round)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners [][]byte
			seen    [][]byte
		)
		for i := range n {
			wg.Go(func() {
				spec := fmt.Appendf(nil, "spec-%d", i)
				cur, ok, err := s.SwapTable(t.Context(), name, nil, spec)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("SwapTable: %v", err)
				case ok:
					winners = append(winners, spec)
				default:
					seen = append(seen, cur)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d creators won, want 1: %q", round, len(winners), winners)
		}
		for _, cur := range seen {
			if !bytes.Equal(cur, winners[0]) {
				t.Errorf("round %d: a loser saw %q, the winner wrote %q", round, cur, winners[0])
			}
		}
		if got := catalogEntry(t, s, name); !bytes.Equal(got, winners[0]) {
			t.Errorf("round %d: Tables lists %q, the winner wrote %q", round, got, winners[0])
		}
	}
}

// testDropTable: a dropped table's rows are gone, its operations fail with
// ErrUnknownTable until it is created again (empty), other tables and the
// catalog are untouched, and dropping is idempotent.
func testDropTable(t *testing.T, s store.Store) {
	ctx := t.Context()
	create(t, s, "gone")
	create(t, s, "gone_not") // a name with the dropped one as prefix
	apply(t, s, "gone", put("k", 5, "v"), del("d", 6))
	apply(t, s, "gone_not", put("k", 7, "kept"))
	swap(t, s, "gone", nil, []byte("spec"))
	for range 2 {
		if err := s.DropTable(ctx, "gone"); err != nil {
			t.Fatalf("DropTable: %v", err)
		}
	}
	if _, err := s.Apply(ctx, "gone", []store.Mutation{put("k", 9, "v")}); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Apply after DropTable: %v, want ErrUnknownTable", err)
	}
	if _, _, err := s.Get(ctx, "gone", []byte("k"), strongest(s)); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("Get after DropTable: %v, want ErrUnknownTable", err)
	}
	wantRow(t, s, "gone_not", []byte("k"), 7, false, []byte("kept"))
	if got := catalogEntry(t, s, "gone"); !bytes.Equal(got, []byte("spec")) {
		t.Errorf("DropTable touched the catalog entry: %q", got)
	}
	create(t, s, "gone")
	for _, k := range []string{"k", "d"} {
		if row, found := get(t, s, "gone", []byte(k)); found {
			t.Errorf("key %s of the dropped table is back after re-create: %+v", k, row)
		}
	}
	// The re-created table takes writes at any version again.
	checkOutcome(t, put("k", 1, "new"), apply(t, s, "gone", put("k", 1, "new"))[0], true, 0)
	if err := s.DropTable(ctx, "never_created"); err != nil {
		t.Errorf("DropTable of an unknown table: %v", err)
	}
	if err := s.DropTable(ctx, "Bad-Name"); err == nil {
		t.Error("DropTable with an invalid name succeeded")
	}
}

// testPinnedDrop (a store.PinnedDropper): a drop with a pin drops the
// table's rows as DropTable does, idempotently; the same drop again after
// the table was created again (a drop that arrived late) leaves the new
// table's rows, and so does one with the pin of a table never created.
func testPinnedDrop(t *testing.T, s store.Store) {
	pd, ok := s.(store.PinnedDropper)
	if !ok {
		t.Skip("not a store.PinnedDropper")
	}
	ctx := t.Context()
	neverPin, err := pd.DropPin(ctx, "pinned")
	if err != nil || len(neverPin) == 0 {
		t.Fatalf("DropPin of a table never created = %x, %v; want a pin", neverPin, err)
	}
	for round := range 2 {
		create(t, s, "pinned")
		apply(t, s, "pinned", put("k", uint64(round+1), "v"))
		pin, err := pd.DropPin(ctx, "pinned")
		if err != nil || len(pin) == 0 {
			t.Fatalf("round %d: DropPin = %x, %v; want a pin", round, pin, err)
		}
		for range 2 {
			if err := pd.DropTablePinned(ctx, "pinned", pin); err != nil {
				t.Fatalf("round %d: DropTablePinned: %v", round, err)
			}
		}
		if _, _, err := s.Get(ctx, "pinned", []byte("k"), strongest(s)); !errors.Is(err, store.ErrUnknownTable) {
			t.Fatalf("round %d: Get after DropTablePinned: %v, want ErrUnknownTable", round, err)
		}
		create(t, s, "pinned")
		apply(t, s, "pinned", put("k", 10, "acknowledged"))
		for _, late := range [][]byte{pin, neverPin} {
			if err := pd.DropTablePinned(ctx, "pinned", late); err != nil {
				t.Fatalf("round %d: a late DropTablePinned: %v", round, err)
			}
			if _, _, err := s.Get(ctx, "pinned", []byte("k"), strongest(s)); errors.Is(err, store.ErrUnknownTable) {
				t.Fatalf("round %d: a late DropTablePinned (pin %x) dropped the table created again, with its acknowledged row", round, late)
			}
			wantRow(t, s, "pinned", []byte("k"), 10, false, []byte("acknowledged"))
		}
		if err := s.DropTable(ctx, "pinned"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pd.DropTablePinned(ctx, "Bad-Name", neverPin); err == nil {
		t.Error("DropTablePinned with an invalid name succeeded")
	}
}
