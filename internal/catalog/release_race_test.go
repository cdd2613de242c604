package catalog

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store/pebble"
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

// stallTopics is topics whose first making for the table created at
// stallAt waits, outside the topics' lock, until proceed is closed
// (entered is closed once it waits).
type stallTopics struct {
	*topics
	*gate
	stallAt time.Time
}

func (p *stallTopics) Provision(ctx context.Context, t Table) error {
	if t.CreatedAt.Equal(p.stallAt) {
		p.pass()
	}
	return p.topics.Provision(ctx, t)
}

// TestReleaseAfterStaleMakingHere: a refresh here read a table before
// another process dropped it, and its making of the table's topics ended
// only after a create of the name through this process made the new
// table's (the same topics, by name). The stale making must not count as
// the last: the new table dropped elsewhere later, the release of it
// found the topics the dropped earlier table's, skipped them, and they
// stayed on this process's log for good.
func TestReleaseAfterStaleMakingHere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := &stallTopics{topics: newTopics(), gate: newGate()}
	var b *Catalog
	b = openCatalog(t, st, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			return b.ReleaseTopics(ctx, tb, func(ctx context.Context) error { return provB.Unprovision(ctx, tb) })
		}
	})
	first, _, err := a.Create(ctx, Table{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	provB.stallAt = first.CreatedAt
	refreshed := make(chan error, 1)
	go func() { refreshed <- b.Refresh(ctx) }()
	<-provB.entered // b's making of the first table's topics, read before the drop
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	second, _, err := b.Create(ctx, Table{Name: "t"})
	if err != nil {
		t.Fatalf("create here: %v", err)
	}
	close(provB.proceed)
	if err := <-refreshed; err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(second.CreatedAt) {
		t.Fatalf("b does not serve the table created here: %+v %v", got, ok)
	}
	h = &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if provB.has("t") {
		t.Error("the topics of the table created here, dropped elsewhere, were not released here")
	}
}

// stallCreateTable is a store whose first CreateTable waits, once
// entered is closed, until proceed is closed.
type stallCreateTable struct {
	*pebble.Store
	*gate
}

func (s *stallCreateTable) CreateTable(ctx context.Context, table string) error {
	s.pass()
	return s.Store.CreateTable(ctx, table)
}

// TestStaleMakingReleasesNoLiveTable: a refresh here read a table before
// another process dropped it, and came to make its topics while a create
// of the name through this process, which made the new table's topics,
// was finishing. The stale making released the table whose topics this
// process made last, as an earlier table of the name dropped elsewhere:
// the new table, live, lost its topics (and its records).
func TestStaleMakingReleasesNoLiveTable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := &stallTopics{topics: newTopics(), gate: newGate()}
	stB := &stallCreateTable{Store: st, gate: newGate()}
	var released []Table
	var b *Catalog
	b = openCatalog(t, stB, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			released = append(released, tb)
			return b.ReleaseTopics(ctx, tb, func(ctx context.Context) error { return provB.Unprovision(ctx, tb) })
		}
	})
	other, _, err := a.Create(ctx, Table{Name: "a"}) // read, and made, before t
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(ctx, Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	provB.stallAt = other.CreatedAt
	refreshed := make(chan error, 1)
	go func() { refreshed <- b.Refresh(ctx) }()
	<-provB.entered // the refresh read t, and makes a's topics first
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	type result struct {
		t   Table
		err error
	}
	createdHere := make(chan result, 1)
	go func() {
		tb, _, err := b.Create(ctx, Table{Name: "t"})
		createdHere <- result{tb, err}
	}()
	<-stB.entered // the new table's topics are made, its entry not ready yet
	close(provB.proceed)
	refreshErr := <-refreshed
	close(stB.proceed)
	created := <-createdHere
	if created.err != nil {
		t.Fatalf("create here: %v (refresh: %v)", created.err, refreshErr)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(created.t.CreatedAt) {
		t.Fatalf("b does not serve the table created here: %+v %v", got, ok)
	}
	if !provB.has("t") {
		t.Errorf("the topics of the table created here were deleted (released %v)", released)
	}
	if len(released) != 0 {
		t.Errorf("released %v; want none (the table dropped elsewhere was never made here)", released)
	}
}

// gate holds the first caller of pass, once entered is closed, until
// proceed is closed; later callers pass at once.
type gate struct {
	once             sync.Once
	entered, proceed chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), proceed: make(chan struct{})} }

func (g *gate) pass() {
	g.once.Do(func() {
		close(g.entered)
		<-g.proceed
	})
}
