package catalog

import (
	"context"
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestDropWithDamagedStorePin: a deleting entry whose store pin is not
// one the store can drop with (damaged, yet the entry decodes): the drop
// reads a pin again (the entry is still held: no table of the name can
// have been created since, as for an entry saved without one) and
// finishes. It failed for good, forced or not, "drop pin 78 is not a
// generation; ... run the drop again to finish it".
func TestDropWithDamagedStorePin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := &genStore{Store: openStore(t)}
	cat := openCatalog(t, st, newTopics())
	if _, _, err := cat.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	e, _, err := cat.load(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	damaged := e.t
	damaged.State, damaged.StorePin = Deleting, "x"
	if _, err := cat.swap(ctx, e.spec, damaged, false, false); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := cat.Drop(ctx, "t", false, h.hooks()); err != nil {
		t.Fatalf("drop of the entry with a damaged store pin: %v", err)
	}
	if _, ok := saved(t, st, "t"); ok {
		t.Error("the entry is left")
	}
	if _, _, err := st.Get(ctx, "t", []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("a read of the dropped table's row: %v, want ErrUnknownTable", err)
	}
}

// failOnceTopics is topics whose first Unprovision fails (the drop is
// interrupted there, its pins saved).
type failOnceTopics struct {
	*topics
	failed *bool
}

func (p failOnceTopics) Unprovision(ctx context.Context, t Table) error {
	if !*p.failed {
		*p.failed = true
		return errors.New("the log went away")
	}
	return p.topics.Unprovision(ctx, t)
}

// TestForcedDropOfDamagedEntryPinnedResumes: a forced drop of a damaged
// entry on a store whose drops are pinned, interrupted once its pin is
// saved (the entry it saved does not decode either: no partitions), is
// run again with force and finishes: the topics, the rows and the entry
// go.
func TestForcedDropOfDamagedEntryPinnedResumes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := &genStore{Store: openStore(t)}
	failed := false
	prov := failOnceTopics{topics: newTopics(), failed: &failed}
	if _, _, err := openCatalog(t, st, prov.topics).Create(ctx, Table{Name: "x", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, "x", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == "x" {
			if _, ok, err := st.SwapTable(ctx, "x", r.Spec, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
				t.Fatalf("damaging the entry: %v %v", ok, err)
			}
		}
	}
	c := openCatalog(t, st, prov)
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := c.Drop(ctx, "x", true, h.hooks()); err == nil {
		t.Fatal("the interrupted drop succeeded")
	}
	if err := c.Drop(ctx, "x", true, h.hooks()); err != nil {
		t.Fatalf("the forced drop run again: %v", err)
	}
	if _, ok := saved(t, st, "x"); ok {
		t.Error("the entry is left")
	}
	if prov.has("x") {
		t.Error("the topics are left")
	}
	if _, _, err := st.Get(ctx, "x", []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("a read of the dropped table's row: %v, want ErrUnknownTable", err)
	}
}
