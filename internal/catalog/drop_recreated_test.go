package catalog

import (
	"testing"
	"time"
)

// TestDropHereOfTableCreatedAgainElsewhere: a process serves a table that
// another process dropped and created again; before its refresh sees
// that, a drop of the name runs through it. The drop marks the new table
// dropping (its writes stop while it drains): it cached it as served,
// since the process served a table of the name (the dropped one), and
// announced it to the resolver, which resolved the new table here on
// topics this process never made for it (on its own log, the dropped
// table's, their records included).
func TestDropHereOfTableCreatedAgainElsewhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := newTopics()
	b := openCatalog(t, st, provB)
	def := Table{Name: "t", VisibilityWindow: 10 * time.Millisecond}
	if _, _, err := a.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	watch := make(chan Table, 8)
	b.Watch(watch)
	if err := a.Drop(ctx, "t", true, (&dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}).hooks()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // another created_at
	again, _, err := a.Create(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	var resolving []Table
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	h.during = func() { // the drop waits for the writes in flight
		if now, ok := b.Resolving("t"); ok {
			resolving = append(resolving, now)
		}
	}
	if err := b.Drop(ctx, "t", false, h.hooks()); err != nil {
		t.Fatal(err)
	}
	for _, r := range resolving {
		if r.CreatedAt.Equal(again.CreatedAt) {
			t.Errorf("while the drop drained it, this process resolved the table created again elsewhere, "+
				"whose topics it never made: %v", r)
		}
	}
	close(watch)
	for tb := range watch {
		if tb.CreatedAt.Equal(again.CreatedAt) {
			t.Errorf("the table created again elsewhere was announced to the resolver here by the drop: %v", tb)
		}
	}
}
