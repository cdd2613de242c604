package catalog

import (
	"errors"
	"strings"
	"testing"
)

// TestDropRefusesOneUnresolvedIntent: a drop without force refuses a
// table with a single unresolved intent (one partition's end one past
// its committed offset), putting nothing in its way.
func TestDropRefusesOneUnresolvedIntent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := openCatalog(t, openStore(t), newTopics())
	if _, _, err := c.Create(ctx, Table{Name: "x", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{5, 7}}, committed: []int64{5, 6}}
	if err := c.Drop(ctx, "x", false, h.hooks()); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "1 unresolved intents (partitions [1])") {
		t.Fatalf("drop with one unresolved intent: %v, want ErrBusy naming it", err)
	}
	if _, ok := c.Get("x"); !ok {
		t.Error("the table no longer takes writes after a refused drop")
	}
}

// TestAlterHereOfATableCreatedAgainElsewhere: an alter here of a table
// dropped and created again elsewhere since this process's last refresh
// saves the new table's entry, but does not serve it here before its
// topics are made here (the next refresh): the old one's were.
func TestAlterHereOfATableCreatedAgainElsewhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	other := openCatalog(t, st, newTopics())
	if _, _, err := other.Create(ctx, Table{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	prov := newTopics()
	c := openCatalog(t, st, prov)
	if _, ok := c.Get("x"); !ok {
		t.Fatal("x is not served here")
	}
	h := &dropHooks{ends: [][]int64{{0}}}
	if err := other.Drop(ctx, "x", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	again, _, err := other.Create(ctx, Table{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Alter(ctx, "x", Alter{MaxAttempts: ptr[int32](3)}); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get("x"); ok && got.CreatedAt.Equal(again.CreatedAt) {
		t.Errorf("the table created again is served here before its topics were made here (made %v)", prov.made)
	}
}

// TestDropRefusesWritesLoggedWhileItWaited: a drop without force that
// finds intents logged while it waited for the writes in flight refuses,
// putting the table back, even when they are all resolved by then: the
// table still had writers.
func TestDropRefusesWritesLoggedWhileItWaited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := openCatalog(t, openStore(t), newTopics())
	if _, _, err := c.Create(ctx, Table{Name: "x", Partitions: 1, VisibilityWindow: MinVisibilityWindow}); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{5}, {7}}, committed: []int64{5}}
	h.during = func() { h.committed = []int64{7} } // resolved as fast as logged
	if err := c.Drop(ctx, "x", false, h.hooks()); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "2 intents were logged while the drop waited") {
		t.Fatalf("drop with writes logged while it waited: %v, want ErrBusy", err)
	}
	if _, ok := c.Get("x"); !ok {
		t.Error("the table does not take writes again after the refused drop")
	}
}
