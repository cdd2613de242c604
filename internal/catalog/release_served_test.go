package catalog

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestReleaseAfterCreateExistingHere: tables s and t served here are
// dropped and created again elsewhere; a create through this process of
// t's new definition (the same: createExisting) is making its topics when
// this process's refresh decides to release the dropped s and t, and
// finishes (t's new table served here, announced to the resolver) while
// the release of s still waits for its resolver partitions. The release
// of the dropped t then runs with the new t served here: Options.Release
// must touch nothing of the name (topics, health conditions, the
// resolver's group subscription) but through ReleaseTopics, whose del
// does not run then.
func TestReleaseAfterCreateExistingHere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	a := openCatalog(t, st, newTopics())
	provB := &stallTopics{topics: newTopics(), gate: newGate()}
	sDrains := newGate() // the release of s waits for its partitions
	var (
		mu      sync.Mutex
		served  []Table // what b served of t's name when each release of t began
		deleted []Table // the releases whose del ran
	)
	var b *Catalog
	b = openCatalog(t, st, provB, func(o *Options) {
		o.Release = func(ctx context.Context, tb Table) error {
			if tb.Name == "s" {
				sDrains.pass()
			}
			if tb.Name == "t" {
				now, _ := b.Get(tb.Name)
				mu.Lock()
				served = append(served, now)
				mu.Unlock()
			}
			return b.ReleaseTopics(ctx, tb, func(ctx context.Context) error {
				mu.Lock()
				deleted = append(deleted, tb)
				mu.Unlock()
				return provB.Unprovision(ctx, tb)
			})
		}
	})
	var dropped [2]Table
	for i, name := range []string{"s", "t"} {
		var err error
		if dropped[i], _, err = a.Create(ctx, Table{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	var again [2]Table
	for i, name := range []string{"s", "t"} {
		if err := a.Drop(ctx, name, true, h.hooks()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // another created_at
		var err error
		if again[i], _, err = a.Create(ctx, Table{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	provB.stallAt = again[1].CreatedAt
	createdHere := make(chan error, 1)
	go func() {
		_, _, err := b.Create(ctx, Table{Name: "t"})
		createdHere <- err
	}()
	<-provB.entered // the create's making of the new t's topics
	refreshed := make(chan error, 1)
	go func() { refreshed <- b.Refresh(ctx) }()
	<-sDrains.entered // the refresh decided; it releases s first
	close(provB.proceed)
	if err := <-createdHere; err != nil {
		t.Fatalf("create here: %v", err)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(again[1].CreatedAt) {
		t.Fatalf("b does not serve the table created again: %+v %v", got, ok)
	}
	close(sDrains.proceed)
	if err := <-refreshed; err != nil {
		t.Fatalf("refresh: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(served); n == 0 || !served[n-1].CreatedAt.Equal(again[1].CreatedAt) {
		t.Fatalf("served at the releases of the dropped t: %v; want the last with the new t served here "+
			"(the interleaving this test builds)", served)
	}
	var dels []Table
	for _, d := range deleted {
		if d.Name == "t" {
			dels = append(dels, d)
		}
	}
	if len(dels) != 1 || !dels[0].CreatedAt.Equal(dropped[1].CreatedAt) {
		t.Errorf("the topics of t were let go for %v; want once, for the dropped t (before the new one's making)", dels)
	}
	if got, ok := b.Get("t"); !ok || !got.CreatedAt.Equal(again[1].CreatedAt) || !provB.has("t") {
		t.Fatalf("after the refresh, b does not serve the table created again: %+v %v, topics %v", got, ok, provB.has("t"))
	}
}
