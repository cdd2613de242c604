package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDropNotHeldByStuckMaking: while a refresh's making of one table's
// topics does not finish (the log does not answer), a drop here of that
// table, or of another one, ends within its deadline: the drop of the
// stuck table ends the making and goes on; when the log heeds no
// cancellation either, it fails at its deadline saying to run it again,
// and the making of a new table's topics is not held meanwhile. The drop
// waited for the making forever, past its deadline (the lock ordering
// makings and drops ignored the context, and was one for every table),
// and every making began meanwhile waited behind it.
func TestDropNotHeldByStuckMaking(t *testing.T) {
	t.Parallel()
	const (
		refresh  = 50 * time.Millisecond
		deadline = time.Second
	)
	for _, c := range []struct {
		name    string
		drop    string
		deaf    bool // the log does not heed the making's cancellation
		stopped bool // the drop ends at its deadline, having deleted nothing
	}{
		{name: "the stuck table", drop: "stuck"},
		{name: "another table", drop: "plain", deaf: true},
		{name: "the stuck table, its log deaf to cancellation", drop: "stuck", deaf: true, stopped: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			other := openCatalog(t, st, newTopics())
			if _, _, err := other.Create(ctx, Table{Name: "plain", Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			prov := stuckTopics{topics: newTopics(), table: "stuck", release: make(chan struct{}), deaf: c.deaf}
			cat := openCatalog(t, st, prov, func(o *Options) { o.Refresh = refresh })
			released := false
			release := func() {
				if !released {
					close(prov.release)
					released = true
				}
			}
			defer release()
			if _, _, err := other.Create(ctx, Table{Name: "stuck", Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			if err := cat.Refresh(ctx); err == nil {
				t.Fatal("a refresh serves the table whose topics are not made")
			}
			h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
			dctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			began := time.Now()
			dropped := make(chan error, 1)
			go func() { dropped <- cat.Drop(dctx, c.drop, true, h.hooks()) }()
			if c.stopped {
				// The drop waits for the making; a new table's goes on.
				time.Sleep(deadline / 3)
				if _, _, err := other.Create(ctx, Table{Name: "fresh", Partitions: 1}); err != nil {
					t.Fatal(err)
				}
				_ = cat.Refresh(ctx)
				if _, ok := cat.Get("fresh"); !ok {
					t.Error("a table created elsewhere is not served while a drop here waits for a stuck making")
				}
			}
			var err error
			select {
			case err = <-dropped:
			case <-time.After(deadline + 2*time.Second):
				t.Fatalf("the drop of %s still waits %s after it began, its deadline %s", c.drop, time.Since(began).Round(time.Millisecond), deadline)
			}
			if !c.stopped {
				if err != nil {
					t.Fatalf("drop %s: %v", c.drop, err)
				}
				if prov.has(c.drop) {
					t.Errorf("the topics of %s are left", c.drop)
				}
				if _, ok := saved(t, st, c.drop); ok {
					t.Errorf("the entry of %s is left", c.drop)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "run the drop again") ||
				!strings.Contains(err.Error(), "making") {
				t.Fatalf("drop of the table whose making does not end: %v, want the deadline, saying what it waits for and to run it again", err)
			}
			if s, ok := saved(t, st, c.drop); !ok || s.State != Deleting {
				t.Fatalf("after the drop ended at its deadline the entry is %+v (found %v), want deleting", s, ok)
			}
			release()
			if err := cat.Drop(ctx, c.drop, true, h.hooks()); err != nil {
				t.Fatalf("the drop run again once the log answers: %v", err)
			}
			if prov.has(c.drop) {
				t.Error("the topics the making made before the drop are left")
			}
		})
	}
}

// TestMakingForgottenWhenDroppedElsewhere: the making of a table's topics
// that a refresh began and did not wait for to the end is ended and
// forgotten once a refresh finds the table dropped elsewhere (or dropped
// and created again: the new one's topics are made). It stayed in
// Catalog.making for good, and a making that did not end went on.
func TestMakingForgottenWhenDroppedElsewhere(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		again bool
	}{
		{"dropped", false},
		{"dropped and created again", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			other := openCatalog(t, st, newTopics())
			prov := stuckTopics{topics: newTopics(), table: "stuck", release: make(chan struct{})}
			defer close(prov.release)
			cat := openCatalog(t, st, prov, func(o *Options) { o.Refresh = 50 * time.Millisecond })
			if _, _, err := other.Create(ctx, Table{Name: "stuck", Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			if err := cat.Refresh(ctx); err == nil {
				t.Fatal("a refresh serves the table whose topics are not made")
			}
			cat.makingMu.Lock()
			m := cat.making["stuck"]
			cat.makingMu.Unlock()
			if m == nil {
				t.Fatal("no making of the stuck table's topics")
			}
			h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
			if err := other.Drop(ctx, "stuck", true, h.hooks()); err != nil {
				t.Fatal(err)
			}
			var again Table
			if c.again {
				var err error
				if again, _, err = other.Create(ctx, Table{Name: "stuck", Partitions: 2}); err != nil {
					t.Fatal(err)
				}
			}
			_ = cat.Refresh(ctx)
			cat.makingMu.Lock()
			now, n := cat.making["stuck"], len(cat.making)
			cat.makingMu.Unlock()
			switch {
			case !c.again && n != 0:
				t.Errorf("%d makings kept after the table was dropped elsewhere", n)
			case c.again && (now == nil || !now.createdAt.Equal(again.CreatedAt)):
				t.Errorf("the making kept is %+v, want the one of the table created again (%s)", now, again.CreatedAt)
			}
			select {
			case <-m.done:
			case <-time.After(2 * time.Second):
				t.Error("the making of the dropped table's topics goes on")
			}
		})
	}
}

// panicTopics is a Provisioner whose first Unprovision panics (a bug in
// the log's client, recovered by net/http around an admin call).
type panicTopics struct {
	*topics
	panicked *bool
}

func (p panicTopics) Unprovision(ctx context.Context, t Table) error {
	if !*p.panicked {
		*p.panicked = true
		panic("unprovision: a bug")
	}
	return p.topics.Unprovision(ctx, t)
}

// TestDropAfterPanicNotHeld: a drop whose deletion of the topics panicked
// (recovered, as net/http recovers an admin call's panic) lets the
// table's topic lock go: the drop run again finishes, and the name's
// topics can be made again. The lock stayed held for good: every later
// drop of the name failed at its deadline "waiting for this process's
// making of them to end", and every making of the name waited the same.
func TestDropAfterPanicNotHeld(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	panicked := false
	prov := panicTopics{topics: newTopics(), panicked: &panicked}
	cat := openCatalog(t, openStore(t), prov)
	if _, _, err := cat.Create(ctx, Table{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the Unprovision did not panic")
			}
		}()
		_ = cat.Drop(ctx, "t", true, h.hooks())
	}()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := cat.Drop(dctx, "t", true, h.hooks()); err != nil {
		t.Fatalf("the drop run again after a panic: %v", err)
	}
	if prov.has("t") {
		t.Error("the topics are left")
	}
}
