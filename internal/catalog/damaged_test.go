package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestDamagedEntry: a table's catalog entry that cannot be decoded (bytes
// damaged in the store, a row edited by hand) or that names another table.
// Before, the process did not start (`catalog: load x: proto: ...`, with
// nothing to run), every refresh of every process failed, and every
// create, alter and drop failed on it, the drop of that very entry
// included: nothing wail offered removed it. Now the entry is not served
// (OnProblem says what to run), the other tables are, and a forced drop
// removes it.
func TestDamagedEntry(t *testing.T) {
	t.Parallel()
	other, err := Table{Name: "y", FailureMode: Transactional, Partitions: 2}.encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec []byte
	}{
		{"undecodable", []byte{0xff, 0xff, 0xff}},
		{"another name", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			prov := newTopics()
			if _, _, err := openCatalog(t, st, prov).Create(ctx, Table{Name: "a"}); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := st.SwapTable(ctx, "x", nil, tc.spec); err != nil || !ok {
				t.Fatalf("saving the damaged entry: %v %v", ok, err)
			}
			problems := &problemLog{}
			c, err := Open(ctx, st, Options{Defaults: defaults, Provisioner: prov, OnProblem: problems.set})
			if err != nil {
				t.Fatalf("Open with a damaged entry: %v", err)
			}
			if err := problems.get("x"); err == nil || !strings.Contains(err.Error(), "wail table drop x --force") {
				t.Errorf("OnProblem(x) was told %v, want what to run", err)
			}
			if _, ok := c.Get("a"); !ok {
				t.Error("a sound table is not served next to a damaged one")
			}
			for _, name := range []string{"x", "y"} {
				if _, ok := c.Get(name); ok {
					t.Errorf("%s is served from a damaged entry", name)
				}
				if _, ok := c.Resolving(name); ok {
					t.Errorf("%s is resolved from a damaged entry", name)
				}
			}
			if _, created, err := c.Create(ctx, Table{Name: "b"}); err != nil || !created {
				t.Errorf("create of another table: %v %v", created, err)
			}
			if _, _, err := c.Create(ctx, Table{Name: "x"}); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "--force") {
				t.Errorf("create over the damaged entry: %v", err)
			}
			if _, _, err := c.Alter(ctx, "x", Alter{MaxAttempts: ptr[int32](3)}); !errors.Is(err, ErrBusy) {
				t.Errorf("alter of the damaged entry: %v", err)
			}
			h := &dropHooks{ends: [][]int64{{0}}}
			if err := c.Drop(ctx, "x", false, h.hooks()); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "--force") {
				t.Errorf("drop without force of the damaged entry: %v", err)
			}
			if err := c.Drop(ctx, "x", true, h.hooks()); err != nil {
				t.Fatalf("forced drop of the damaged entry: %v", err)
			}
			if _, ok := saved(t, st, "x"); ok {
				t.Error("the damaged entry is still saved")
			}
			if !slices.Contains(prov.removed, "x") {
				t.Errorf("the topics of x were not removed: %v", prov.removed)
			}
			if err, told := problems.get("x"), problems.told("x"); !told || err != nil {
				t.Errorf("OnProblem(x) not cleared: %v", err)
			}
			if err := c.Refresh(ctx); err != nil {
				t.Errorf("refresh after the drop: %v", err)
			}
			if _, created, err := c.Create(ctx, Table{Name: "x"}); err != nil || !created {
				t.Errorf("create after the drop: %v %v", created, err)
			}
		})
	}
}

// failingTables is a backend whose Tables fails while fail is set.
type failingTables struct {
	Backend
	fail bool
}

func (b *failingTables) Tables(ctx context.Context) ([]store.Table, error) {
	if b.fail {
		return nil, errors.New("store down")
	}
	return b.Backend.Tables(ctx)
}

// TestRefreshTellsLoadFromProblems: Refresh's error says whether the
// catalog could not be read (ErrLoad: the server warns once each time that
// starts) or tables were read that cannot be served (told to OnProblem,
// on /healthz). The server took both for one condition and warned once:
// a store outage that began while a damaged entry was reported was never
// logged.
func TestRefreshTellsLoadFromProblems(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	b := &failingTables{Backend: st}
	c := openCatalog(t, b, newTopics())
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, ok, err := st.SwapTable(ctx, "x", nil, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
		t.Fatalf("saving the damaged entry: %v %v", ok, err)
	}
	if err := c.Refresh(ctx); err == nil || errors.Is(err, ErrLoad) {
		t.Fatalf("refresh with a damaged entry: %v, want its problem, not ErrLoad", err)
	}
	b.fail = true
	if err := c.Refresh(ctx); !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("refresh with the store down: %v, want ErrLoad", err)
	}
}

// TestFreshWhileReloadsFail: a copy of the catalog takes writes for
// SeenWithin (twice the refresh) from the start of the reload it came
// from, not longer: a drop or an alter elsewhere counts on being seen by
// then. A reload that works makes it fresh again.
func TestFreshWhileReloadsFail(t *testing.T) {
	t.Parallel()
	const refresh = 50 * time.Millisecond
	b := &failingTables{Backend: openStore(t)}
	opened := time.Now()
	c := openCatalog(t, b, newTopics(), func(o *Options) { o.Refresh = refresh })
	loaded := time.Now() // the copy was read before (a slow Open read it well after opened)
	if err := c.Fresh(); err != nil && time.Since(opened) < SeenWithin(refresh) {
		t.Fatalf("just opened: %v", err)
	}
	b.fail = true
	if err := c.Refresh(t.Context()); !errors.Is(err, ErrLoad) {
		t.Fatalf("refresh with the store down: %v", err)
	}
	time.Sleep(time.Until(loaded.Add(SeenWithin(refresh) + 10*time.Millisecond)))
	if err := c.Fresh(); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "writes are refused until it is read again") {
		t.Fatalf("a copy older than %s: %v", SeenWithin(refresh), err)
	}
	b.fail = false
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Fresh(); err != nil {
		t.Fatalf("after a reload that worked: %v", err)
	}
	if unbounded := openCatalog(t, b, newTopics()); unbounded.Fresh() != nil {
		t.Fatal("a catalog without Refresh is never stale")
	}
}

// TestDamagedEntryKeepsItsBudget: the entry of a table served here that
// becomes unreadable is neither written nor resolved here, but still
// counts the partitions this process served it with against
// limits.max_partitions: its topics are still there, and the table comes
// back when the entry is restored.
func TestDamagedEntryKeepsItsBudget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	c := openCatalog(t, st, newTopics(), func(o *Options) { o.Limits = Limits{MaxTablePartitions: 4, MaxPartitions: 8} })
	for _, tb := range []Table{{Name: "x", Partitions: 4}, {Name: "a", Partitions: 2}} {
		if _, _, err := c.Create(ctx, tb); err != nil {
			t.Fatal(err)
		}
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
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh with a damaged entry reported no problem")
	}
	if _, ok := c.Get("x"); ok {
		t.Error("x is served from a damaged entry")
	}
	if _, ok := c.Resolving("x"); ok {
		t.Error("x is resolved from a damaged entry")
	}
	if _, _, err := c.Create(ctx, Table{Name: "b", Partitions: 4}); !errors.Is(err, ErrBudget) {
		t.Errorf("4 + 2 + 4 partitions over a budget of 8, 4 of them the damaged table's: %v, want ErrBudget", err)
	}
	if _, _, err := c.Create(ctx, Table{Name: "b", Partitions: 2}); err != nil {
		t.Errorf("exactly the budget: %v", err)
	}
}

// TestLoadOfADamagedEntry: Load of an entry that cannot be read fails,
// saying what to run, rather than answer a definition of nothing but the
// name (no state, no partitions) that callers would act on.
func TestLoadOfADamagedEntry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	c := openCatalog(t, st, newTopics())
	if _, ok, err := st.SwapTable(ctx, "x", nil, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
		t.Fatalf("saving the damaged entry: %v %v", ok, err)
	}
	if tb, found, err := c.Load(ctx, "x"); !errors.Is(err, ErrBusy) || found || !strings.Contains(err.Error(), "wail table drop x --force") {
		t.Errorf("Load of a damaged entry: %+v %v %v, want ErrBusy saying what to run", tb, found, err)
	}
	if _, found, err := c.Load(ctx, "y"); err != nil || found {
		t.Errorf("Load of an absent table: %v %v", found, err)
	}
}
