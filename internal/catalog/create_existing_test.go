package catalog

import (
	"context"
	"sync"
	"testing"
	"time"
)

// hookTopics is topics that runs once, in its first Provision of a
// table, a function before making them.
type hookTopics struct {
	*topics
	once sync.Once
	hook func()
}

func (p *hookTopics) Provision(ctx context.Context, t Table) error {
	p.once.Do(p.hook)
	return p.topics.Provision(ctx, t)
}

// TestCreateExistingRecreatedMeanwhile: a create here of a table another
// process created reads its entry, makes its topics here, and caches it
// only if the store still holds that entry. When the table was dropped
// and created again meanwhile (another created_at), the create answers
// and serves the table created again, never the one it read: served here,
// the dropped table's definition took the writes of the new one.
func TestCreateExistingRecreatedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	other := openCatalog(t, st, newTopics())
	var recreated Table
	prov := &hookTopics{topics: newTopics()}
	prov.hook = func() {
		h := &dropHooks{ends: [][]int64{{0}}}
		if err := other.Drop(ctx, "x", true, h.hooks()); err != nil {
			t.Errorf("drop elsewhere: %v", err)
			return
		}
		var err error
		if recreated, _, err = other.Create(ctx, Table{Name: "x"}); err != nil {
			t.Errorf("create again elsewhere: %v", err)
		}
	}
	c := openCatalog(t, st, prov)
	first, _, err := other.Create(ctx, Table{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	got, created, err := c.Create(ctx, Table{Name: "x"})
	if err != nil || created {
		t.Fatalf("create of the existing table: %v %v", created, err)
	}
	if recreated.CreatedAt.Equal(first.CreatedAt) {
		t.Fatal("the table created again has the dropped one's created_at")
	}
	if !got.CreatedAt.Equal(recreated.CreatedAt) {
		t.Errorf("create answered the table created %s, want the one created again (%s)", got.CreatedAt, recreated.CreatedAt)
	}
	if served, ok := c.Get("x"); !ok || !served.CreatedAt.Equal(recreated.CreatedAt) {
		t.Errorf("serves %+v (%v), want the table created again (%s)", served, ok, recreated.CreatedAt)
	}
}

// TestStillDeletingOnlyItsOwnEntry: StillDeleting of a table is false
// once the store holds another table of the name, even one being deleted
// too: what a late drop removes by the name would be that table's.
func TestStillDeletingOnlyItsOwnEntry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	c := openCatalog(t, st, newTopics())
	dropped := WithDefaults(Table{Name: "x", State: Deleting, CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, defaults)
	again := dropped
	again.CreatedAt = dropped.CreatedAt.Add(time.Hour)
	spec, err := again.encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.SwapTable(ctx, "x", nil, spec); err != nil || !ok {
		t.Fatalf("saving the entry: %v %v", ok, err)
	}
	if held, err := c.StillDeleting(ctx, dropped); err != nil || held {
		t.Errorf("StillDeleting of the table dropped before: %v %v, want false", held, err)
	}
	if held, err := c.StillDeleting(ctx, again); err != nil || !held {
		t.Errorf("StillDeleting of the table being deleted: %v %v, want true", held, err)
	}
}
