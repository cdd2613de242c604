package catalog

import (
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
