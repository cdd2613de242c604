package catalog

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestReleaseBeforeCreateHere: a process whose own log holds a table's
// topics releases them (deletes them by name) when its refresh finds the
// table dropped elsewhere. A create of the name through the process
// between the refresh's decision and the deletion made the new table's
// topics: the release then deleted them (a ready table that could not
// take writes, or whose acknowledged writes were lost), and where the
// create found the dropped table's topics still there it took them over,
// with the dropped table's records. The create's making waits for the
// release, which deletes them under the exclusive topic lock of the name.
func TestReleaseBeforeCreateHere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := newTopics()
	entered, proceed := make(chan struct{}), make(chan struct{})
	var b *Catalog
	b = openCatalog(t, st, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			close(entered)
			<-proceed // the rest of the release (the resolver stops)
			return b.ReleaseTopics(ctx, tb, func(ctx context.Context) error { return provB.Unprovision(ctx, tb) })
		}
	})
	if _, _, err := a.Create(ctx, Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil || !provB.has("t") {
		t.Fatalf("b did not take up the table: %v", err)
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan error, 1)
	go func() { refreshed <- b.Refresh(ctx) }()
	<-entered
	type result struct {
		t   Table
		err error
	}
	createdHere := make(chan result, 1)
	go func() {
		tb, _, err := b.Create(ctx, Table{Name: "t"})
		createdHere <- result{tb, err}
	}()
	var created *result
	select {
	case r := <-createdHere: // made its topics before the release deleted them
		created = &r
	case <-time.After(200 * time.Millisecond):
	}
	close(proceed)
	if err := <-refreshed; err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if created == nil {
		r := <-createdHere
		created = &r
	}
	if created.err != nil {
		t.Fatalf("create here: %v", created.err)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(created.t.CreatedAt) {
		t.Fatalf("b does not serve the table created here: %+v %v", got, ok)
	}
	if !provB.has("t") {
		t.Error("the topics of the table created here were deleted by the release of the dropped one")
	}
	provB.mu.Lock()
	defer provB.mu.Unlock()
	if !slices.Equal(provB.removed, []string{"t"}) || !slices.Equal(provB.made, []string{"t", "t"}) {
		t.Errorf("topics made %v, removed %v: want the dropped table's removed, then the new one's made", provB.made, provB.removed)
	}
}

// TestCreateHereReleasesTheDroppedTable: a table served here is dropped
// elsewhere and created again through this process before its refresh
// saw the drop. The create took the dropped table's topics over (this
// process's own log), records included, and no refresh released them:
// the one that followed found the table of this process's create. The
// create releases them first.
func TestCreateHereReleasesTheDroppedTable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := newTopics()
	var released []Table
	var b *Catalog
	b = openCatalog(t, st, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			released = append(released, tb)
			return b.ReleaseTopics(ctx, tb, func(ctx context.Context) error { return provB.Unprovision(ctx, tb) })
		}
	})
	dropped, _, err := a.Create(ctx, Table{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil || !provB.has("t") {
		t.Fatalf("b did not take up the table: %v", err)
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	created, _, err := b.Create(ctx, Table{Name: "t"})
	if err != nil {
		t.Fatalf("create here: %v", err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(created.CreatedAt) || !provB.has("t") {
		t.Fatalf("b does not serve the table created here: %+v %v, topics %v", got, ok, provB.has("t"))
	}
	if len(released) != 1 || !released[0].CreatedAt.Equal(dropped.CreatedAt) {
		t.Errorf("released %v; want the dropped table, once", released)
	}
	provB.mu.Lock()
	defer provB.mu.Unlock()
	if !slices.Equal(provB.removed, []string{"t"}) || !slices.Equal(provB.made, []string{"t", "t"}) {
		t.Errorf("topics made %v, removed %v: want the dropped table's removed, then the new one's made", provB.made, provB.removed)
	}
}
