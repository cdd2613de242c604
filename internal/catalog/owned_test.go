package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// ownedTopics is a Provisioner whose log records what each table's topics
// were made for (OwnedReader).
type ownedTopics struct {
	*topics
	owned []Table
}

func (p ownedTopics) Owned(context.Context) ([]Table, error) { return p.owned, nil }

// TestOpenReleasesWhatWasMadeForTablesGone: after a restart, this
// process's note of what it made (Catalog.made) is empty; Open seeds it
// from what the log's topics were made for (OwnedReader). The topics of a
// table dropped elsewhere while the process was down are released (they
// stayed for good), those of a table dropped and created again under the
// name before the new table's are made (the new table took them over,
// the dropped one's records included); never those of a table the store
// holds: ready, or being dropped (a drop here interrupted by the
// restart: the drop finishes it).
func TestOpenReleasesWhatWasMadeForTablesGone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	first := openCatalog(t, st, newTopics())
	held, _, err := first.Create(ctx, Table{Name: "held"})
	noErr(t, err)
	again, _, err := first.Create(ctx, Table{Name: "again"})
	noErr(t, err)
	going, _, err := first.Create(ctx, Table{Name: "going"})
	noErr(t, err)
	e, found, err := first.load(ctx, "going")
	if err != nil || !found {
		t.Fatalf("load: %v %v", found, err)
	}
	deleting := e.t
	deleting.State = Deleting
	if _, err := first.swap(ctx, e.spec, deleting, false, false); err != nil {
		t.Fatal(err)
	}
	earlier := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	gone := Table{Name: "gone", CreatedAt: earlier}
	dropped := Table{Name: "again", CreatedAt: earlier} // "again" was created again since

	p := ownedTopics{topics: newTopics()}
	for _, tb := range []Table{held, gone, dropped, going} {
		p.owned = append(p.owned, Table{Name: tb.Name, CreatedAt: tb.CreatedAt})
		p.parts[tb.Name] = tb.Partitions
	}
	var (
		mu       sync.Mutex
		released []string
		c        *Catalog
	)
	openCatalog(t, st, p, releasing(&c, p, func(tb Table) error {
		mu.Lock()
		released = append(released, tb.Name+"@"+tb.CreatedAt.UTC().Format(time.RFC3339))
		mu.Unlock()
		p.mu.Lock()
		made := slices.Contains(p.made, tb.Name)
		p.mu.Unlock()
		if made {
			t.Errorf("%s released after its topics were made for the new table", tb.Name)
		}
		return nil
	}))
	slices.Sort(released)
	if want := []string{"again@2020-01-01T00:00:00Z", "gone@2020-01-01T00:00:00Z"}; !slices.Equal(released, want) {
		t.Fatalf("released at Open: %v, want %v", released, want)
	}
	if !slices.Equal(p.made, []string{"again"}) {
		t.Errorf("topics made at Open: %v, want the table created again's", p.made)
	}
	if got, ok := c.Get("again"); !ok || !got.CreatedAt.Equal(again.CreatedAt) {
		t.Errorf("the table created again: %+v, %v; want it served", got, ok)
	}
	for _, name := range []string{"held", "going", "again"} {
		if !p.has(name) {
			t.Errorf("the topics of %s were deleted", name)
		}
	}

	// A refresh that read the store before a create here of a table made
	// its topics (the note says the new table, the read says nothing)
	// releases nothing: the store is read again.
	created, _, err := c.Create(ctx, Table{Name: "new"})
	noErr(t, err)
	if errs := c.releaseUnheld(ctx, map[string]entry{}, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	if !p.has("new") || slices.Contains(released, "new@"+created.CreatedAt.UTC().Format(time.RFC3339)) {
		t.Errorf("the table created here was released: %v", released)
	}
	// Its drop elsewhere (the entry removed) is released at the next
	// refresh.
	e, _, err = c.load(ctx, "going")
	noErr(t, err)
	if _, err := first.swap(ctx, e.spec, e.t, false, true); err != nil {
		t.Fatal(err)
	}
	noErr(t, c.Refresh(ctx))
	if p.has("going") {
		t.Error("the topics of the table whose drop finished elsewhere stayed")
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStaleMakingOverLaterTopics: a making for a table read before its
// drop elsewhere (stale), that finds the topics of the name made here for
// the table created since (intentlog.ErrOwnedElsewhere), does not serve
// it, and is no problem: reported, it stood for the later table, which is
// served (a refresh that finds it served reports nothing). Topics made
// for another table not made here are a problem.
func TestStaleMakingOverLaterTopics(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	stale, later := Table{Name: "t", CreatedAt: t0, Partitions: 1}, Table{Name: "t", CreatedAt: t0.Add(time.Second), Partitions: 1}
	// Created since on a host whose clock is behind the stale table's.
	skewed := Table{Name: "t", CreatedAt: t0.Add(-time.Second), Partitions: 1}
	for _, tc := range []struct {
		name    string
		made    *Table
		problem bool
	}{
		{"made here for a later table", &later, false},
		{"made here for a table created since, by a clock behind", &skewed, false},
		{"made for a table not made here", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTopics()
			p.fail = func(tb Table) error {
				if tb.CreatedAt.Equal(stale.CreatedAt) {
					return fmt.Errorf("create topic: %w", intentlog.ErrOwnedElsewhere)
				}
				return nil
			}
			c := openCatalog(t, openStore(t), p)
			if tc.made != nil {
				c.madeFor(*tc.made)
			}
			served, err := c.provision(t.Context(), stale, c.opSeq())
			if served || (err != nil) != tc.problem {
				t.Fatalf("provision of the stale table: served %v, %v; want a problem: %v", served, err, tc.problem)
			}
		})
	}
}

// TestOpenRefusesAStoreThatHoldsNoTable: the log's topics were made for
// tables, and the store holds none at all: a store that is not the one
// they were made with (a wrong DSN, an empty database) as likely as every
// table dropped elsewhere while this process was down. Open released
// them all (deleted: events the consumers had not read, intents not
// resolved); it now refuses, naming them and what to do, and keeps them.
func TestOpenRefusesAStoreThatHoldsNoTable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p := ownedTopics{topics: newTopics()}
	made := Table{Name: "orders", CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Partitions: 4}
	p.owned = []Table{made}
	p.parts[made.Name] = made.Partitions
	var released []string
	c, err := Open(ctx, openStore(t), Options{Provisioner: p, Release: func(_ context.Context, tb Table) error {
		released = append(released, tb.Name)
		return nil
	}})
	if !errors.Is(err, ErrNoTableHeld) || c != nil {
		t.Fatalf("Open on a store holding no table, the log holding topics of %s = %v; want ErrNoTableHeld", made.Name, err)
	}
	if !strings.Contains(err.Error(), "orders") {
		t.Errorf("%v: does not name the table", err)
	}
	if len(released) != 0 || !p.has("orders") {
		t.Errorf("released %v; the topics kept: %v", released, p.has("orders"))
	}
}

// crashAfterMaking is a Provisioner that makes a table's topics, then
// stops there (a crash of the creating process: it never goes on).
type crashAfterMaking struct {
	*topics
	madeCh chan Table
	never  chan struct{}
}

func (p crashAfterMaking) Provision(ctx context.Context, t Table) error {
	if err := p.topics.Provision(ctx, t); err != nil {
		return err
	}
	p.madeCh <- t
	<-p.never
	return errors.New("crashed")
}

// TestOpenAfterACrashHereHoldsATable: a create or drop through this
// process, interrupted by a crash at any step, leaves the store holding
// the table's entry (creating, or deleting) while the log holds its
// topics: the entry is saved before the topics are made, and removed only
// after they are deleted. The next start is not refused as a store that
// holds no table (ErrNoTableHeld); nor after every table was dropped here.
func TestOpenAfterACrashHereHoldsATable(t *testing.T) {
	t.Parallel()
	// Never closed: the crashed operations never go on (their store is
	// closed at the end of the test).
	never := make(chan struct{})
	cases := []struct {
		name string
		// crash runs the operation on a catalog of st up to its crash
		// point, and returns the table whose topics the log holds then
		// (none: zero).
		crash func(t *testing.T, st Backend, p *topics) Table
	}{
		{name: "create: topics made, entry creating", crash: func(t *testing.T, st Backend, p *topics) Table {
			cp := crashAfterMaking{topics: p, madeCh: make(chan Table, 1), never: never}
			c := openCatalog(t, st, cp)
			go func() { _, _, _ = c.Create(context.WithoutCancel(t.Context()), Table{Name: "t"}) }()
			return <-cp.madeCh
		}},
		{name: "drop: marked deleting, topics not yet deleted", crash: func(t *testing.T, st Backend, p *topics) Table {
			c := openCatalog(t, st, p)
			tb, _, err := c.Create(t.Context(), Table{Name: "t"})
			noErr(t, err)
			stopped := make(chan struct{})
			go func() {
				_ = c.Drop(context.WithoutCancel(t.Context()), "t", true, DropHooks{
					Progress: func(context.Context, Table) ([]int64, []int64, error) { return nil, nil, nil },
					Stopped: func(context.Context, Table) error {
						close(stopped)
						<-never
						return errors.New("crashed")
					},
				})
			}()
			<-stopped
			return tb
		}},
		{name: "every table dropped here", crash: func(t *testing.T, st Backend, p *topics) Table {
			c := openCatalog(t, st, p)
			_, _, err := c.Create(t.Context(), Table{Name: "t"})
			noErr(t, err)
			noErr(t, c.Drop(t.Context(), "t", true, DropHooks{
				Progress: func(context.Context, Table) ([]int64, []int64, error) { return nil, nil, nil },
				Stopped:  func(context.Context, Table) error { return nil },
			}))
			return Table{}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			p := newTopics()
			made := tc.crash(t, st, p)
			restarted := ownedTopics{topics: newTopics()}
			if made.Name != "" {
				if !p.has(made.Name) {
					t.Fatalf("the topics of %s were not made before the crash", made.Name)
				}
				restarted.owned = []Table{{Name: made.Name, CreatedAt: made.CreatedAt}}
				restarted.parts[made.Name] = made.Partitions
			} else if len(p.parts) != 0 {
				t.Fatalf("topics left after every table was dropped here: %v", p.parts)
			}
			if _, err := Open(t.Context(), st, Options{Defaults: defaults, Provisioner: restarted,
				Release: func(context.Context, Table) error { return nil }}); err != nil {
				t.Fatalf("Open after the crash = %v; want it to start", err)
			}
		})
	}
}

// TestReleaseFailureToldUntilReleased: a release that failed is said
// (Options.OnRelease; it was said nowhere: the refresh's error held it,
// and only a failure to read the catalog is shown) until one of the same
// table works, whichever way it is tried again: the next refresh, a
// create of the name here (which releases it first:
// refused while it fails, told when it works), or a refresh after the
// table created again elsewhere was dropped here (its topics deleted by
// name meanwhile).
func TestReleaseFailureToldUntilReleased(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"refreshed", "created here", "created elsewhere, dropped here"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			first := openCatalog(t, st, newTopics())
			_, _, err := first.Create(ctx, Table{Name: "t"})
			noErr(t, err)
			_, _, err = first.Create(ctx, Table{Name: "keep"})
			noErr(t, err)
			p := newTopics()
			var (
				mu    sync.Mutex
				fail  = true
				told  = map[string]string{} // the last word on each table, by name@created_at
				c     *Catalog
				state = func(tb Table) string {
					mu.Lock()
					defer mu.Unlock()
					return told[tb.Name+"@"+tb.CreatedAt.String()]
				}
				setFail = func(f bool) { mu.Lock(); fail = f; mu.Unlock() }
			)
			c = openCatalog(t, st, p, releasing(&c, p, func(Table) error {
				mu.Lock()
				defer mu.Unlock()
				if fail {
					return errors.New("disk on fire")
				}
				return nil
			}), func(o *Options) {
				o.OnRelease = func(tb Table, err error) {
					mu.Lock()
					defer mu.Unlock()
					told[tb.Name+"@"+tb.CreatedAt.String()] = fmt.Sprint(err)
				}
			})
			old, ok := c.Get("t")
			if !ok {
				t.Fatal("t not served")
			}
			hooks := DropHooks{
				Progress: func(context.Context, Table) ([]int64, []int64, error) { return nil, nil, nil },
				Stopped:  func(context.Context, Table) error { return nil },
			}
			noErr(t, first.Drop(ctx, "t", true, hooks))
			_ = c.Refresh(ctx)
			if got := state(old); got != "disk on fire" {
				t.Fatalf("told %q after a failed release; want the failure", got)
			}
			switch how {
			case "refreshed":
				setFail(false)
				_ = c.Refresh(ctx)
			case "created here":
				if _, _, err := c.Create(ctx, Table{Name: "t"}); err == nil {
					t.Fatal("a create of the name while the release fails worked")
				}
				_ = c.Refresh(ctx)
				if got := state(old); got != "disk on fire" {
					t.Fatalf("told %q; want the failure still", got)
				}
				setFail(false)
				_, _, err := c.Create(ctx, Table{Name: "t"})
				noErr(t, err)
			case "created elsewhere, dropped here":
				_, _, err := first.Create(ctx, Table{Name: "t"})
				noErr(t, err)
				_ = c.Refresh(ctx)
				noErr(t, c.Drop(ctx, "t", true, hooks))
				if p.has("t") {
					t.Fatal("the drop here left the topics")
				}
				setFail(false)
				_ = c.Refresh(ctx)
			}
			if got := state(old); got != "<nil>" {
				t.Fatalf("told %q at the end; want the release told done", got)
			}
		})
	}
}

// releasing sets up a catalog's releases as the server's: Release deletes
// the table's topics from p (Unprovision) through ReleaseTopics, once
// first (when set) let it go on; c gets the catalog as Open begins.
func releasing(c **Catalog, p Provisioner, first func(Table) error) func(*Options) {
	return func(o *Options) {
		o.Opening = func(cc *Catalog) { *c = cc }
		o.Release = func(ctx context.Context, tb Table) error {
			return (*c).ReleaseTopics(ctx, tb, func(ctx context.Context) error {
				if first != nil {
					if err := first(tb); err != nil {
						return err
					}
				}
				return p.Unprovision(ctx, tb)
			})
		}
	}
}
