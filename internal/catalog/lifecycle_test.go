package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

func ptr[T any](v T) *T { return &v }

// TestAlter: an alter is saved, seen by every process after its refresh,
// validated like a create, and a no-op when nothing changes.
func TestAlter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a, b := openCatalog(t, st, newTopics()), openCatalog(t, st, newTopics())
	if _, _, err := a.Create(ctx, Table{Name: "t", VisibilityWindow: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, changed, err := a.Alter(ctx, "t", Alter{VisibilityWindow: ptr(3 * time.Second), FailureMode: ptr(Independent), MaxAttempts: ptr[int32](7)})
	if err != nil || !changed || got.VisibilityWindow != 3*time.Second || got.FailureMode != Independent || got.MaxAttempts != 7 || got.Partitions != 8 {
		t.Fatalf("alter: %+v %v %v", got, changed, err)
	}
	if s, _ := saved(t, st, "t"); s != got {
		t.Errorf("saved %+v, alter answered %+v", s, got)
	}
	if g, _ := a.Get("t"); g != got {
		t.Errorf("the altering process serves %+v", g)
	}
	if g, _ := b.Get("t"); g.VisibilityWindow != time.Second {
		t.Errorf("the other process changed before its refresh: %+v", g)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if g, _ := b.Resolving("t"); g != got {
		t.Errorf("after its refresh the other process resolves with %+v, want %+v", g, got)
	}
	if _, changed, err := a.Alter(ctx, "t", Alter{VisibilityWindow: ptr(3 * time.Second)}); err != nil || changed {
		t.Errorf("an alter that changes nothing: %v %v", changed, err)
	}
	if _, _, err := b.Alter(ctx, "t", Alter{VisibilityWindow: ptr(time.Millisecond)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a window below the minimum: %v", err)
	}
	if _, _, err := b.Alter(ctx, "nope", Alter{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("alter of an unknown table: %v", err)
	}
}

// dropHooks fake the resolver's progress and its partitions.
type dropHooks struct {
	mu        sync.Mutex
	ends      [][]int64 // one reading per call; the last repeats
	committed []int64
	calls     int
	during    func() // runs at the second reading (the drop waited)
	stopped   []string
}

func (h *dropHooks) hooks() DropHooks {
	return DropHooks{
		Progress: func(_ context.Context, tb Table) ([]int64, []int64, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls++
			if h.calls == 2 && h.during != nil {
				h.during()
			}
			return h.ends[min(h.calls, len(h.ends))-1], h.committed, nil
		},
		Stopped: func(_ context.Context, t Table) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.stopped = append(h.stopped, t.Name)
			return nil
		},
	}
}

func TestDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	c := openCatalog(t, st, prov)
	other := openCatalog(t, st, newTopics())
	watch := make(chan Table, 4)
	c.Watch(watch)
	first, _, err := c.Create(ctx, Table{Name: "t", Partitions: 2, VisibilityWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	<-watch
	if _, err := st.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 9}}); err != nil {
		t.Fatal(err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	// Unresolved intents: refused, nothing changes.
	h := &dropHooks{ends: [][]int64{{5, 3}}, committed: []int64{5, 1}}
	err = c.Drop(ctx, "t", false, h.hooks())
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "2 unresolved intents (partitions [1])") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("drop with unresolved intents: %v", err)
	}
	if s, _ := saved(t, st, "t"); s.State != Ready {
		t.Errorf("a refused drop left the table %s", s.State)
	}

	// Writes in flight: intents logged while the drop waited; the table
	// took no writes meanwhile and takes them again afterwards.
	h = &dropHooks{ends: [][]int64{{5, 3}, {6, 3}}, committed: []int64{5, 3}}
	h.during = func() {
		if _, ok := c.Get("t"); ok {
			t.Error("the table took writes while the drop waited")
		}
		if _, ok := c.Resolving("t"); !ok {
			t.Error("the table was not resolved while the drop waited")
		}
		if s, _ := saved(t, st, "t"); s.State != Dropping {
			t.Errorf("while the drop waited the table was %s", s.State)
		}
	}
	err = c.Drop(ctx, "t", false, h.hooks())
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "1 intents were logged while the drop waited") {
		t.Fatalf("drop with writes in flight: %v", err)
	}
	if _, ok := c.Get("t"); !ok {
		t.Error("the table takes no writes after a refused drop")
	}

	// Everything resolved: dropped, everywhere.
	h = &dropHooks{ends: [][]int64{{5, 3}}, committed: []int64{5, 3}}
	if err := c.Drop(ctx, "t", false, h.hooks()); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if !slices.Equal(h.stopped, []string{"t"}) || prov.has("t") || !slices.Contains(prov.removed, "t") {
		t.Errorf("drop: resolver stopped %v, topics left %v, removed %v", h.stopped, prov.has("t"), prov.removed)
	}
	if _, ok := saved(t, st, "t"); ok {
		t.Error("the catalog entry is left")
	}
	if _, _, err := st.Get(ctx, "t", []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("the rows are left: %v", err)
	}
	if _, ok := c.Resolving("t"); ok {
		t.Error("a dropped table is resolved")
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Get("t"); ok {
		t.Error("another process serves the dropped table after its refresh")
	}
	if err := c.Drop(ctx, "t", false, h.hooks()); !errors.Is(err, ErrNotFound) {
		t.Errorf("drop of a dropped table: %v", err)
	}

	// Created again: empty, announced again.
	again, created, err := c.Create(ctx, Table{Name: "t", Partitions: 3})
	if err != nil || !created || again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("create after drop: %+v %v %v", again, created, err)
	}
	if w := <-watch; w.Partitions != 3 {
		t.Errorf("watcher got %+v", w)
	}
	if _, found, err := st.Get(ctx, "t", []byte("k"), 0); err != nil || found {
		t.Errorf("a row of the dropped table is back: %v %v", found, err)
	}

	// Forced: unresolved intents are no obstacle.
	h = &dropHooks{ends: [][]int64{{9, 9, 9}}, committed: []int64{0, 0, 0}}
	if err := c.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatalf("forced drop: %v", err)
	}
	if h.calls != 0 {
		t.Errorf("a forced drop read the progress %d times", h.calls)
	}
}

// TestInterruptedDrop: a table left deleting (a crash mid-drop) takes no
// writes, cannot be created anew, and a drop finishes it.
func TestInterruptedDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	c := openCatalog(t, st, prov)
	tb, _, err := c.Create(ctx, Table{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := tb.encode()
	tb.State = Deleting
	spec, _ := tb.encode()
	if _, ok, err := st.SwapTable(ctx, "t", old, spec); err != nil || !ok {
		t.Fatal(ok, err)
	}
	c = openCatalog(t, st, prov)
	if _, ok := c.Get("t"); ok {
		t.Error("a table being deleted takes writes")
	}
	if _, _, err := c.Create(ctx, Table{Name: "t"}); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "wail table drop t --force") {
		t.Errorf("create of a table being deleted: %v", err)
	}
	if _, _, err := c.Alter(ctx, "t", Alter{MaxAttempts: ptr[int32](3)}); !errors.Is(err, ErrBusy) {
		t.Errorf("alter of a table being deleted: %v", err)
	}
	h := &dropHooks{ends: [][]int64{{1}}}
	if err := c.Drop(ctx, "t", false, h.hooks()); err != nil {
		t.Fatalf("finishing the drop: %v", err)
	}
	if h.calls != 0 || prov.has("t") {
		t.Errorf("finishing: %d progress readings, topics left %v", h.calls, prov.has("t"))
	}
	if _, created, err := c.Create(ctx, Table{Name: "t"}); err != nil || !created {
		t.Errorf("create after the finished drop: %v %v", created, err)
	}
}

// TestDroppedElsewhere: a process that served a table another process
// dropped releases it at its refresh (its own log's topics), and serves
// the table again once it is created anew.
func TestDroppedElsewhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := newTopics()
	var released []string
	var b *Catalog
	b = openCatalog(t, st, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			if _, ok := b.Resolving(tb.Name); ok {
				t.Error("released while still resolved")
			}
			released = append(released, tb.Name)
			return provB.Unprovision(ctx, tb)
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
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(released, []string{"t"}) || provB.has("t") {
		t.Errorf("b released %v, topics left %v", released, provB.has("t"))
	}
	if _, ok := b.Get("t"); ok {
		t.Error("b serves a table dropped elsewhere")
	}
	if _, _, err := a.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Get("t"); !ok || got.Partitions != 2 {
		t.Errorf("b does not serve the table created anew: %+v %v", got, ok)
	}
	if err := b.Refresh(ctx); err != nil || len(released) != 1 {
		t.Errorf("another refresh released again: %v %v", released, err)
	}
}

// TestAlterTo: only the settings want names, and that differ, change.
func TestAlterTo(t *testing.T) {
	t.Parallel()
	saved := defaults
	a, changes := AlterTo(saved, Table{VisibilityWindow: time.Second, FailureMode: saved.FailureMode, Partitions: 3})
	if a.VisibilityWindow == nil || *a.VisibilityWindow != time.Second || a.FailureMode != nil || a.MaxAttempts != nil || a.MaxRetryTime != nil ||
		!slices.Equal(changes, []string{"visibility_window 10s -> 1s"}) {
		t.Errorf("AlterTo: %+v %q", a, changes)
	}
	if _, changes := AlterTo(saved, Table{}); len(changes) != 0 {
		t.Errorf("a definition that names nothing changes %q", changes)
	}
}

// gatedTopics holds the first Provision after arm until release: a create
// that read the table's entry and makes its topics before it caches it.
type gatedTopics struct {
	*topics
	armed    atomic.Bool
	held     chan struct{}
	released chan struct{}
	heldErr  error // what the held Provision fails with (nil: it makes the topics)
}

func (p *gatedTopics) Provision(ctx context.Context, t Table) error {
	if p.armed.CompareAndSwap(true, false) {
		close(p.held)
		<-p.released
		if p.heldErr != nil {
			return p.heldErr
		}
	}
	return p.topics.Provision(ctx, t)
}

// TestDropDuringCreateExisting: a create of a table another process
// made, in this one that did not serve it yet, read its entry before a
// drop and caches it after the drop finished (and after this process's
// refresh); this process serves what the store holds (it served the
// dropped table, taking writes for it, until its next refresh).
func TestDropDuringCreateExisting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	prov := &gatedTopics{topics: newTopics(), held: make(chan struct{}), released: make(chan struct{})}
	b := openCatalog(t, st, prov)
	def := Table{Name: "t", Partitions: 2}
	if _, _, err := a.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	prov.armed.Store(true)
	type answer struct {
		got Table
		err error
	}
	created := make(chan answer, 1)
	go func() {
		got, _, err := b.Create(ctx, def)
		created <- answer{got, err}
	}()
	<-prov.held // b's create read the ready entry and makes its topics
	h := &dropHooks{ends: [][]int64{{0, 0}}, committed: []int64{0, 0}}
	if err := a.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	close(prov.released)
	ans := <-created
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	want, saved := saved(t, st, "t")
	got, served := b.Get("t")
	if served != saved || got != want {
		t.Fatalf("b serves %s (%v), the store holds %s (%v)", got.Describe(), served, want.Describe(), saved)
	}
	if ans.got != want {
		t.Errorf("the create answered %s, the store holds %s", ans.got.Describe(), want.Describe())
	}
}

// TestCreateDuringFailedRefresh: a refresh could not make the topics of
// a table another process made, but a create through this process made
// them meanwhile and serves the table; the refresh, which read before
// the create, does not report its failure after the create's success
// (it did, and nothing cleared it: the health condition said the table
// was not served here for as long as it was).
func TestCreateDuringFailedRefresh(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	down := errors.New("log down")
	prov := &gatedTopics{topics: newTopics(), held: make(chan struct{}), released: make(chan struct{}), heldErr: down}
	problems := &problemLog{}
	b := openCatalog(t, st, prov, func(o *Options) { o.OnProblem = problems.set })
	def := Table{Name: "t", Partitions: 2}
	if _, _, err := a.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	prov.armed.Store(true)
	refreshed := make(chan error, 1)
	go func() { refreshed <- b.Refresh(ctx) }()
	<-prov.held // b's refresh read the table and makes its topics
	if _, _, err := b.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	close(prov.released)
	<-refreshed // (it failed to make the topics)
	for range 2 {
		if _, ok := b.Get("t"); !ok {
			t.Fatal("b does not serve the table it created")
		}
		if err := problems.get("t"); err != nil {
			t.Fatalf("b serves the table, but its problem says otherwise: %v", err)
		}
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDroppedUnservable: the problem of a table whose topics cannot be
// made here is cleared once the table is dropped, elsewhere or here (it
// stayed: the health condition named a table that no longer exists).
func TestDroppedUnservable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	prov := newTopics()
	prov.fail = func(Table) error { return errors.New("log down") }
	problems := &problemLog{}
	b := openCatalog(t, st, prov, func(o *Options) { o.OnProblem = problems.set })
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	for _, dropper := range []*Catalog{a, b} {
		if _, _, err := a.Create(ctx, Table{Name: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Refresh(ctx); err == nil || problems.get("t") == nil {
			t.Fatalf("b made the topics of t: %v", err)
		}
		if err := dropper.Drop(ctx, "t", true, h.hooks()); err != nil {
			t.Fatal(err)
		}
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := problems.get("t"); err != nil {
			t.Fatalf("dropped by %v: the problem of t stays: %v", dropper == b, err)
		}
	}
}

// gatedBackend holds the first read of the catalog after arm until
// release, the entries already read: a refresh that read a table before
// a change and goes on after it.
type gatedBackend struct {
	Backend
	armed    atomic.Bool
	held     chan struct{}
	released chan struct{}
}

func (b *gatedBackend) Tables(ctx context.Context) ([]store.Table, error) {
	rows, err := b.Backend.Tables(ctx)
	if b.armed.CompareAndSwap(true, false) {
		close(b.held)
		<-b.released
	}
	return rows, err
}

// TestDropDuringRefreshProvision: a refresh read a table another process
// made and makes its topics here while a drop through this process
// deletes them (held making them), or after the drop finished (held
// after reading the catalog); the topics do not come back after the drop
// (they did, as orphans: a create of the name with another partition
// count then failed on them).
func TestDropDuringRefreshProvision(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		holdStore   bool // hold the refresh after its read of the catalog, not in making the topics
		dropWaitsOn bool // the drop cannot finish while the refresh is held
	}{
		{"making the topics", false, true},
		{"after reading the catalog", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			a := openCatalog(t, st, newTopics())
			prov := &gatedTopics{topics: newTopics(), held: make(chan struct{}), released: make(chan struct{})}
			gb := &gatedBackend{Backend: st, held: make(chan struct{}), released: make(chan struct{})}
			b := openCatalog(t, gb, prov)
			if _, _, err := a.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
				t.Fatal(err)
			}
			held, released := prov.held, prov.released
			if c.holdStore {
				held, released = gb.held, gb.released
				gb.armed.Store(true)
			} else {
				prov.armed.Store(true)
			}
			refreshed := make(chan error, 1)
			go func() { refreshed <- b.Refresh(ctx) }()
			<-held // b's refresh read the ready table
			h := &dropHooks{ends: [][]int64{{0, 0}}, committed: []int64{0, 0}}
			dropped := make(chan error, 1)
			go func() { dropped <- b.Drop(ctx, "t", true, h.hooks()) }()
			if c.dropWaitsOn {
				time.Sleep(200 * time.Millisecond) // the drop goes as far as it can
			} else if err := <-dropped; err != nil {
				t.Fatal(err)
			}
			close(released)
			if err := <-refreshed; err != nil {
				t.Fatal(err)
			}
			if c.dropWaitsOn {
				if err := <-dropped; err != nil {
					t.Fatal(err)
				}
			}
			if prov.has("t") {
				t.Fatal("the dropped table's topics came back")
			}
			if _, _, err := b.Create(ctx, Table{Name: "t", Partitions: 3}); err != nil {
				t.Fatalf("create again with another partition count: %v", err)
			}
		})
	}
}

// problemLog keeps what OnProblem was told last, by table.
type problemLog struct {
	mu sync.Mutex
	m  map[string]error
}

func (l *problemLog) set(table string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]error{}
	}
	l.m[table] = err
}

func (l *problemLog) get(table string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[table]
}

// told reports whether OnProblem was told of table at all.
func (l *problemLog) told(table string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[table]
	return ok
}
