package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

var defaults = Table{FailureMode: Transactional, VisibilityWindow: 10 * time.Second, Partitions: 8,
	MaxAttempts: 100, MaxRetryTime: 10 * time.Minute}

// topics is a Provisioner that keeps the topics of each table in memory,
// as one log shared by every catalog of a test, and fails on demand.
type topics struct {
	mu      sync.Mutex
	parts   map[string]int32 // table -> partitions of its topics
	made    []string         // every Provision that made topics
	removed []string         // every Unprovision
	fail    func(t Table) error
}

func newTopics() *topics { return &topics{parts: map[string]int32{}} }

func (p *topics) Provision(_ context.Context, t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(t); err != nil {
			return err
		}
	}
	if n, ok := p.parts[t.Name]; ok {
		if n != t.Partitions {
			return fmt.Errorf("topics of %s have %d partitions: %w", t.Name, n, intentlog.ErrPartitionMismatch)
		}
		return nil
	}
	p.parts[t.Name] = t.Partitions
	p.made = append(p.made, t.Name)
	return nil
}

func (p *topics) Unprovision(_ context.Context, t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.parts, t.Name)
	p.removed = append(p.removed, t.Name)
	return nil
}

func (p *topics) has(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.parts[name]
	return ok
}

func openStore(t *testing.T) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openCatalog(t *testing.T, b Backend, p Provisioner, mutate ...func(*Options)) *Catalog {
	t.Helper()
	o := Options{Defaults: defaults, Provisioner: p}
	for _, m := range mutate {
		m(&o)
	}
	c, err := Open(t.Context(), b, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// saved returns the definition the store holds for name.
func saved(t *testing.T, b Backend, name string) (Table, bool) {
	t.Helper()
	rows, err := b.Tables(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name {
			tb, err := decode(r.Spec)
			if err != nil {
				t.Fatal(err)
			}
			return tb, true
		}
	}
	return Table{}, false
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	c := openCatalog(t, st, prov)
	watch := make(chan Table, 4)
	if got := c.Watch(watch); len(got) != 0 {
		t.Fatalf("new catalog lists %v", got)
	}
	tb, created, err := c.Create(ctx, Table{Name: "orders", VisibilityWindow: time.Second})
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if tb.Partitions != 8 || tb.FailureMode != Transactional || tb.VisibilityWindow != time.Second ||
		tb.MaxAttempts != 100 || tb.MaxRetryTime != 10*time.Minute || tb.State != Ready {
		t.Fatalf("defaults not applied: %+v", tb)
	}
	if w := <-watch; w.Name != "orders" {
		t.Fatalf("watcher got %+v", w)
	}
	if _, created, err := c.Create(ctx, Table{Name: "orders", VisibilityWindow: time.Second}); err != nil || created {
		t.Fatalf("identical re-create: %v created=%v", err, created)
	}
	_, _, err = c.Create(ctx, Table{Name: "orders", Partitions: 3})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "window 1s, 8 partitions") {
		t.Fatalf("conflicting re-create: %v, want ErrConflict naming the saved definition", err)
	}
	for _, bad := range []Table{{Name: "Bad-Name"}, {Name: "w", VisibilityWindow: time.Microsecond},
		{Name: "p", Partitions: 5000}, {Name: "f", FailureMode: 9}, {Name: "a", MaxAttempts: -1}, {Name: "r", MaxRetryTime: time.Millisecond}} {
		if _, _, err := c.Create(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if len(prov.made) != 1 {
		t.Fatalf("provisioned %v", prov.made)
	}
}

func TestReopenServesTheSavedDefinition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := pebble.Open(dir, pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	prov := newTopics()
	c := openCatalog(t, st, prov)
	want, _, err := c.Create(ctx, Table{Name: "orders", VisibilityWindow: time.Second, FailureMode: Independent})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = pebble.Open(dir, pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c = openCatalog(t, st, prov)
	if got, ok := c.Get("orders"); !ok || got != want {
		t.Fatalf("after reopen: %+v %v, want %+v", got, ok, want)
	}
}

// TestCreateRace: concurrent creates of one name with different
// definitions, through two catalogs on one store (two processes): one
// definition wins, every create that succeeds got it, the others are told
// what it is, and both catalogs (and a new one) serve exactly what is
// saved. Before creation was a swap, every create answered ok and the
// store kept whichever save came last.
func TestCreateRace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	cats := []*Catalog{openCatalog(t, st, prov), openCatalog(t, st, prov)}
	for round := range 8 {
		name := fmt.Sprintf("race%d", round)
		type answer struct {
			def     Table
			got     Table
			created bool
			err     error
		}
		answers := make([]answer, 12)
		var wg sync.WaitGroup
		for i := range answers {
			def := Table{Name: name, VisibilityWindow: time.Duration(100+i%3) * time.Millisecond, FailureMode: FailureMode(1 + i%2)}
			wg.Go(func() {
				got, created, err := cats[i%2].Create(ctx, def)
				answers[i] = answer{def, got, created, err}
			})
		}
		wg.Wait()
		want, ok := saved(t, st, name)
		if !ok || want.State != Ready {
			t.Fatalf("%s: saved %+v %v, want a ready table", name, want, ok)
		}
		created := 0
		for _, a := range answers {
			switch {
			case a.err == nil:
				if a.got != want {
					t.Errorf("%s: create of %s answered %s, but the store holds %s", name, a.def.Describe(), a.got.Describe(), want.Describe())
				}
				if a.created {
					created++
				}
			case errors.Is(a.err, ErrConflict):
				if !strings.Contains(a.err.Error(), want.Describe()) {
					t.Errorf("%s: conflict %q does not name the saved definition %s", name, a.err, want.Describe())
				}
			default:
				t.Errorf("%s: create: %v", name, a.err)
			}
		}
		if created != 1 {
			t.Errorf("%s: %d creates said created, want 1", name, created)
		}
		for i, c := range cats {
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.Get(name); !ok || got != want {
				t.Errorf("%s: catalog %d serves %+v %v, the store holds %+v", name, i, got, ok, want)
			}
		}
		if got, ok := openCatalog(t, st, prov).Get(name); !ok || got != want {
			t.Errorf("%s: a new catalog serves %+v %v, the store holds %+v", name, got, ok, want)
		}
	}
}

// TestFailedCreateLeavesNothing: a create whose topics cannot be made
// removes the topics it made and its reservation; the next one succeeds.
func TestFailedCreateLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	c := openCatalog(t, st, prov)
	down := errors.New("broker down")
	prov.fail = func(tb Table) error {
		prov.parts[tb.Name] = tb.Partitions // the intent topic was made, then the event topic failed
		return down
	}
	if _, _, err := c.Create(ctx, Table{Name: "t"}); !errors.Is(err, down) {
		t.Fatalf("create with the log down: %v", err)
	}
	if prov.has("t") {
		t.Error("a failed create left its topics")
	}
	if tb, ok := saved(t, st, "t"); ok {
		t.Errorf("a failed create left its catalog entry: %+v", tb)
	}
	if _, err := st.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Version: 1}}); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("a failed create left store room: %v", err)
	}
	if _, ok := c.Get("t"); ok {
		t.Error("a failed create is served")
	}
	prov.fail = nil
	if _, created, err := c.Create(ctx, Table{Name: "t"}); err != nil || !created {
		t.Fatalf("create after the log came back: %v %v", err, created)
	}
}

// TestCreateOverForeignTopics: topics of the name that exist with another
// partition count are not the create's to delete; its error says how to
// keep them or delete them.
func TestCreateOverForeignTopics(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	prov := newTopics()
	prov.parts["t"] = 3
	c := openCatalog(t, st, prov)
	_, _, err := c.Create(t.Context(), Table{Name: "t"})
	if !errors.Is(err, intentlog.ErrPartitionMismatch) || !strings.Contains(err.Error(), "create the table with their partition count") ||
		!strings.Contains(err.Error(), "wail table drop t --force") {
		t.Fatalf("create over foreign topics: %v", err)
	}
	if !prov.has("t") {
		t.Error("the failed create deleted topics it did not make")
	}
	if _, ok := saved(t, st, "t"); ok {
		t.Error("the failed create left its catalog entry")
	}
}

// TestCreateOverTopicsOwnedElsewhere: topics of the name recorded as
// made for another table (intentlog.ErrOwnedElsewhere) are not the
// create's to delete either.
func TestCreateOverTopicsOwnedElsewhere(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	prov := newTopics()
	prov.parts["t"] = defaults.Partitions
	prov.fail = func(Table) error { return intentlog.ErrOwnedElsewhere }
	c := openCatalog(t, st, prov)
	_, _, err := c.Create(t.Context(), Table{Name: "t"})
	if !errors.Is(err, intentlog.ErrOwnedElsewhere) || !strings.Contains(err.Error(), "not the create's to delete") {
		t.Fatalf("create over topics made for another table: %v", err)
	}
	if !prov.has("t") {
		t.Error("the failed create deleted topics made for another table")
	}
	if _, ok := saved(t, st, "t"); ok {
		t.Error("the failed create left its catalog entry")
	}
}

// TestInterruptedCreate: an entry a crashed creator left (creating) is not
// served; the same create finishes it, another is a conflict, a drop
// removes it.
func TestInterruptedCreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := newTopics()
	def := defaults
	def.Name, def.State, def.CreatedAt = "half", Creating, time.UnixMicro(1)
	spec, _ := def.encode()
	if _, _, err := st.SwapTable(ctx, "half", nil, spec); err != nil {
		t.Fatal(err)
	}
	c := openCatalog(t, st, prov)
	watch := make(chan Table, 1)
	if got := c.Watch(watch); len(got) != 0 {
		t.Errorf("a table being created is resolved: %v", got)
	}
	if _, ok := c.Get("half"); ok {
		t.Error("a table being created is served")
	}
	if _, _, err := c.Create(ctx, Table{Name: "half", Partitions: 2}); !errors.Is(err, ErrConflict) {
		t.Errorf("another definition: %v, want ErrConflict", err)
	}
	got, created, err := c.Create(ctx, Table{Name: "half"})
	if err != nil || created || got.State != Ready || !got.CreatedAt.Equal(def.CreatedAt) {
		t.Fatalf("finishing the create: %+v %v %v", got, created, err)
	}
	if _, ok := c.Get("half"); !ok || !prov.has("half") {
		t.Error("the finished table is not served")
	}
	if w := <-watch; w.Name != "half" {
		t.Errorf("watcher got %+v", w)
	}
}

func TestRefreshSeesTablesOfOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	provA, provB := newTopics(), newTopics()
	a := openCatalog(t, st, provA)
	b := openCatalog(t, st, provB)
	watch := make(chan Table, 1)
	b.Watch(watch)
	if _, _, err := a.Create(ctx, Table{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Get("shared"); ok {
		t.Fatal("b knew the table before a refresh")
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Get("shared"); !ok || got.Partitions != 8 {
		t.Fatalf("after refresh: %+v %v", got, ok)
	}
	if w := <-watch; w.Name != "shared" || len(provB.made) != 1 {
		t.Fatalf("watcher got %+v, provisioned %v", w, provB.made)
	}
	if err := b.Refresh(ctx); err != nil || len(provB.made) != 1 {
		t.Fatalf("a second refresh: %v, provisioned %v", err, provB.made)
	}
}

// TestUnprovisionableNotServed: a ready table whose topics cannot be made
// here is not served (and said so) until a refresh makes them.
func TestUnprovisionableNotServed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	if _, _, err := openCatalog(t, st, newTopics()).Create(ctx, Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	prov := newTopics()
	down := errors.New("log down")
	prov.fail = func(Table) error { return down }
	problems := &problemLog{}
	c, err := Open(ctx, st, Options{Defaults: defaults, Provisioner: prov, OnProblem: problems.set})
	if err != nil {
		t.Fatalf("Open with a table whose topics cannot be made: %v", err)
	}
	if err := problems.get("t"); !errors.Is(err, down) {
		t.Errorf("OnProblem was told %v", err)
	}
	if _, ok := c.Get("t"); ok {
		t.Fatal("a table without topics is served")
	}
	if _, ok := c.Resolving("t"); ok {
		t.Fatal("a table without topics is resolved")
	}
	prov.fail = nil
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("t"); !ok {
		t.Fatal("a refresh that made the topics does not serve the table")
	}
	if err, ok := problems.get("t"), problems.told("t"); !ok || err != nil {
		t.Errorf("OnProblem was not cleared: %v %v", err, ok)
	}
}

func TestParseFailureMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]FailureMode{"": Transactional, "transactional": Transactional, "independent": Independent} {
		if got, err := ParseFailureMode(in); err != nil || got != want {
			t.Errorf("ParseFailureMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFailureMode("eventually"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ms   int64
		want time.Duration
		ok   bool
	}{
		{0, 0, true}, {10, 10 * time.Millisecond, true}, {86_400_000, 24 * time.Hour, true},
		{86_400_001, 0, false}, {-1, 0, false},
		// 288230376151721504 ms times 1e6 wraps around to 9760 ms.
		{288230376151721504, 0, false}, {1<<63 - 1, 0, false},
	} {
		got, err := Millis("visibility_window_ms", tc.ms, MaxVisibilityWindow)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Millis(%d) = %s, %v; want %s, ok=%v", tc.ms, got, err, tc.want, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "visibility_window_ms")) {
			t.Errorf("Millis(%d): %v, want ErrInvalid naming the field", tc.ms, err)
		}
	}
}

// TestBudgets: partitions per table are InvalidArgument, partitions over
// all tables ResourceExhausted; both name the limit, and the catalog goes
// on serving.
func TestBudgets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	c := openCatalog(t, st, newTopics(), func(o *Options) { o.Limits = Limits{MaxTablePartitions: 4, MaxPartitions: 10} })
	_, _, err := c.Create(ctx, Table{Name: "big", Partitions: 5})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limits.max_table_partitions") {
		t.Errorf("5 partitions over a per-table budget of 4: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		if _, _, err := c.Create(ctx, Table{Name: name, Partitions: 4}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = c.Create(ctx, Table{Name: "c", Partitions: 3})
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "limits.max_partitions 10") {
		t.Errorf("11 partitions over a budget of 10: %v", err)
	}
	if _, _, err := c.Create(ctx, Table{Name: "c", Partitions: 2}); err != nil {
		t.Errorf("exactly the budget: %v", err)
	}
	if _, created, err := c.Create(ctx, Table{Name: "a", Partitions: 4}); err != nil || created {
		t.Errorf("an existing table at a full budget: %v %v", err, created)
	}
	if _, ok := c.Get("a"); !ok {
		t.Error("tables are not served after the budget was hit")
	}
	if err := (Limits{MaxTablePartitions: 8, MaxPartitions: 4}).Check(); err == nil {
		t.Error("a total budget below the per-table one was accepted")
	}
}

// TestBudgetAcrossProcesses: two processes create different tables at
// once, each fitting limits.max_partitions with the tables it read but
// not together. Before, both were created (each read the catalog before
// the other's reservation): the budget was passed. Now the create whose
// reservation came second sees the first and yields.
func TestBudgetAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	lim := func(o *Options) { o.Limits = Limits{MaxTablePartitions: 4, MaxPartitions: 6} }
	gated := &gatedBackend{Backend: st, held: make(chan struct{}), released: make(chan struct{})}
	a := openCatalog(t, gated, newTopics(), lim)
	b := openCatalog(t, st, newTopics(), lim)
	gated.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, _, err := a.Create(ctx, Table{Name: "a", Partitions: 4})
		done <- err
	}()
	<-gated.held // a read the catalog: empty
	_, _, errB := b.Create(ctx, Table{Name: "b", Partitions: 4})
	close(gated.released)
	errA := <-done
	if errB != nil {
		t.Fatalf("the first create: %v", errB)
	}
	if !errors.Is(errA, ErrBudget) || !strings.Contains(errA.Error(), "limits.max_partitions 6") {
		t.Errorf("the second create, passing the budget with the first: %v", errA)
	}
	if _, ok := saved(t, st, "a"); ok {
		t.Error("the table over the budget is saved")
	}
	if _, ok := saved(t, st, "b"); !ok {
		t.Error("the table within the budget is not saved")
	}
}

// TestValidateReportsEverySetting: one error names each wrong setting.
func TestValidateReportsEverySetting(t *testing.T) {
	t.Parallel()
	err := Validate(Table{Name: "x", FailureMode: 3, VisibilityWindow: time.Millisecond, Partitions: 0, MaxAttempts: 0, MaxRetryTime: 0}, Limits{}, true)
	for _, want := range []string{"failure_mode", "visibility_window 1ms", "partitions 0", "max_attempts 0", "max_retry_time 0s"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("Validate: %v, want it to name %s", err, want)
		}
	}
	if err := Validate(defaults, Limits{}, false); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}

// TestRetryBounds: a table's retry bounds take the catalog's defaults (or
// the package's when those are unset, as in definitions stored before
// they existed), survive a reload, are validated, and are part of the
// definition.
func TestRetryBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	withRetry := defaults
	withRetry.MaxAttempts, withRetry.MaxRetryTime = 20, 2*time.Minute
	c := openCatalog(t, st, newTopics(), func(o *Options) { o.Defaults = withRetry })
	tb, _, err := c.Create(ctx, Table{Name: "d"})
	if err != nil || tb.MaxAttempts != 20 || tb.MaxRetryTime != 2*time.Minute {
		t.Fatalf("catalog defaults: %+v, %v", tb, err)
	}
	tb, _, err = c.Create(ctx, Table{Name: "own", MaxAttempts: 3, MaxRetryTime: 5 * time.Second})
	if err != nil || tb.MaxAttempts != 3 || tb.MaxRetryTime != 5*time.Second {
		t.Fatalf("own bounds: %+v, %v", tb, err)
	}
	if _, _, err := c.Create(ctx, Table{Name: "own", MaxAttempts: 4, MaxRetryTime: 5 * time.Second}); !errors.Is(err, ErrConflict) {
		t.Fatalf("other bounds on an existing table: %v, want ErrConflict", err)
	}
	for _, bad := range []Table{{Name: "a0", MaxAttempts: -1}, {Name: "a1", MaxAttempts: 2_000_000}, {Name: "r0", MaxRetryTime: time.Millisecond}, {Name: "r1", MaxRetryTime: 8 * 24 * time.Hour}} {
		if _, _, err := c.Create(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", bad, err)
		}
	}
	c2 := openCatalog(t, st, newTopics(), func(o *Options) { // the package defaults
		o.Defaults = Table{FailureMode: Transactional, VisibilityWindow: 10 * time.Second, Partitions: 8}
	})
	if got, _ := c2.Get("own"); got.MaxAttempts != 3 || got.MaxRetryTime != 5*time.Second {
		t.Fatalf("reloaded: %+v", got)
	}
	if tb, _, _ := c2.Create(ctx, Table{Name: "p"}); tb.MaxAttempts != DefaultMaxAttempts || tb.MaxRetryTime != DefaultMaxRetryTime {
		t.Fatalf("package defaults: %+v", tb)
	}
	// A definition stored without bounds (an older wail) reads with the
	// package defaults, and an identical create does not conflict.
	old := Table{Name: "old", FailureMode: Transactional, VisibilityWindow: 10 * time.Second, Partitions: 8}.Proto()
	old.MaxAttempts, old.MaxRetryTimeMs = 0, 0
	if got := FromProto(old); got.MaxAttempts != DefaultMaxAttempts || got.MaxRetryTime != DefaultMaxRetryTime {
		t.Fatalf("old definition: %+v", got)
	}
}

// TestReservedEntriesAreNotTables: state other packages keep with the
// catalog (names starting with store.ReservedPrefix, such as the schema
// registry's) is neither served, decoded nor counted as a table.
func TestReservedEntriesAreNotTables(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	if _, ok, err := st.SwapTable(ctx, store.ReservedPrefix+"schema_registry", nil, []byte(`{"not":"a table"}`)); err != nil || !ok {
		t.Fatalf("save reserved entry: %v %v", ok, err)
	}
	prov := newTopics()
	c := openCatalog(t, st, prov)
	if _, _, err := c.Create(ctx, Table{Name: "orders"}); err != nil {
		t.Fatalf("create beside a reserved entry: %v", err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh beside a reserved entry: %v", err)
	}
	if got := c.Watch(make(chan Table, 1)); len(got) != 1 || got[0].Name != "orders" {
		t.Fatalf("tables: %+v", got)
	}
}
