package catalog

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// stuckTopics is a Provisioner whose Provision of one table waits until
// released (a log that does not answer for that table's topics), or until
// its context ends unless deaf (a log that does not heed it either).
type stuckTopics struct {
	*topics
	table   string
	release chan struct{}
	deaf    bool
}

func (p stuckTopics) Provision(ctx context.Context, t Table) error {
	if t.Name == p.table {
		done := ctx.Done()
		if p.deaf {
			done = nil
		}
		select {
		case <-p.release:
		case <-done:
			return ctx.Err()
		}
	}
	return p.topics.Provision(ctx, t)
}

// TestRefreshNotHeldByOneTable: a refresh whose making of one table's
// topics does not finish still takes up what it read of the others, so
// the copy stays fresh and the other tables keep taking writes; the stuck
// table is not served here (its problem says so) until its topics are
// made, and a later refresh serves it once they are. The refresh waited
// for it: the copy went stale, and this process refused the writes of
// every table.
func TestRefreshNotHeldByOneTable(t *testing.T) {
	t.Parallel()
	const refresh = 100 * time.Millisecond
	ctx := t.Context()
	st := openStore(t)
	other := openCatalog(t, st, newTopics())
	if _, _, err := other.Create(ctx, Table{Name: "ok", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	prov := stuckTopics{topics: newTopics(), table: "stuck", release: make(chan struct{})}
	problems := &problemLog{}
	c := openCatalog(t, st, prov, func(o *Options) { o.Refresh, o.OnProblem = refresh, problems.set })
	released := false
	defer func() {
		if !released {
			close(prov.release)
		}
	}()
	if _, _, err := other.Create(ctx, Table{Name: "stuck", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// Alter "ok" elsewhere: the refreshes must take it up meanwhile.
	if _, _, err := other.Alter(ctx, "ok", Alter{FailureMode: ptr(Independent)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * SeenWithin(refresh)); time.Now().Before(deadline); {
		began := time.Now()
		done := make(chan error, 1)
		go func() { done <- c.Refresh(ctx) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the refresh reported no problem with the table whose topics are not made")
			}
		case <-time.After(SeenWithin(refresh)):
			t.Fatalf("a refresh still waits for one table's topics %s after it began", time.Since(began).Round(time.Millisecond))
		}
		if err := c.Fresh(); err != nil {
			t.Fatalf("one table's topics not made stop the writes of all: %v", err)
		}
		if tb, ok := c.Get("ok"); !ok || tb.FailureMode != Independent {
			t.Fatalf("the other table: %+v served %v, want it served with the alter made elsewhere", tb, ok)
		}
		if _, ok := c.Get("stuck"); ok {
			t.Fatal("a table whose topics are not made is served")
		}
		if problems.get("stuck") == nil {
			t.Fatal("the table whose topics are not made has no problem told")
		}
		time.Sleep(refresh)
	}
	close(prov.release)
	released = true
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(refresh) {
		err := c.Refresh(ctx)
		if _, ok := c.Get("stuck"); ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the table is not served once its topics could be made: %v", err)
		}
	}
	if err, told := problems.get("stuck"), problems.told("stuck"); !told || err != nil {
		t.Errorf("its problem was not cleared: %v", err)
	}
	if _, ok := c.Resolving("stuck"); !ok {
		t.Error("the table is not resolved once its topics were made")
	}
	if err := c.Fresh(); err != nil {
		t.Error(err)
	}
}

// TestRefreshTakesAFinishedMaking: a refresh whose wait for topics already
// ended (an earlier table's making took it all) still serves a table
// whose making finished meanwhile. It picked at random between the
// finished making and its ended wait: with one table's topics stuck,
// every other table created elsewhere was served only at one refresh in
// two, and its problem came and went.
func TestRefreshTakesAFinishedMaking(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := &Catalog{opts: Options{Provisioner: newTopics()}, making: map[string]*making{}}
	for i := range 32 {
		tb := Table{Name: fmt.Sprintf("t%d", i), Partitions: 1, CreatedAt: time.UnixMicro(int64(i + 1))}
		if served, _ := c.provisionBy(ctx, tb, 0, time.Now()); served {
			continue // the making finished within the call
		}
		c.makingMu.Lock()
		m := c.making[tb.Name]
		c.makingMu.Unlock()
		<-m.done
		served, err := c.provisionBy(ctx, tb, 0, time.Now().Add(-time.Second))
		if !served || err != nil {
			t.Fatalf("table %s, whose topics were made, is not served by a refresh whose wait ended: %v", tb.Name, err)
		}
	}
}
