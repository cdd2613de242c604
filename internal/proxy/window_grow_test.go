package proxy

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// TestWindowGrowthWaitsForResolvers: an alter that lengthens a table's
// visibility window reaches the resolvers of the processes sharing the
// store only at their next catalog refresh (and commit tick), and a
// resolver still on the old window gives up on an intent once the old
// window (and its recheck) passed. So a proxy, the altering process's or
// one whose refresh saw the alter first, keeps writing under the old
// window until every resolver took the new one: its store write is
// bounded by 3/4 of the old window. (It wrote under the new window at
// once: a store write that took longer than the old window landed after a
// resolver elsewhere had resolved its intent as not stored, an
// acknowledged write without an event.) A process that starts within
// that time keeps the old window too: the hold is in the catalog entry
// (it knew only the new window, and wrote under it at once).
func TestWindowGrowthWaitsForResolvers(t *testing.T) {
	t.Parallel()
	const (
		short = 100 * time.Millisecond
		long  = 10 * time.Second
	)
	ctx := t.Context()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open := func() *catalog.Catalog {
		cat, err := catalog.Open(ctx, st, catalog.Options{Provisioner: dropTopics{}, Refresh: time.Hour,
			Defaults: catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: short, Partitions: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return cat
	}
	altering := open()
	if _, _, err := altering.Create(ctx, catalog.Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	other := open() // another process sharing the store, which saw the table before the alter
	if _, _, err := altering.Alter(ctx, "t", catalog.Alter{VisibilityWindow: new(time.Duration(long))}); err != nil {
		t.Fatal(err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	started := open() // a process that starts within the hold: it never saw the old window
	for _, tc := range []struct {
		name string
		cat  *catalog.Catalog
	}{{"altering process", altering}, {"process that refreshed", other}, {"process started after the alter", started}} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := tc.cat.Get("t"); got.VisibilityWindow != long {
				t.Fatalf("the definition's window is %s, want the altered %s", got.VisibilityWindow, long)
			}
			world := &proxytest.World{Rows: map[string]store.Row{}}
			p := New(world.Log(), world.Store(), tc.cat, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil)
			began := time.Now()
			if r := p.Write(ctx, []Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}})[0]; r.Err != nil {
				t.Fatal(r.Err)
			}
			world.Mu.Lock()
			bound := world.ApplyDeadline.Sub(began)
			world.Mu.Unlock()
			if bound > short {
				t.Fatalf("the store write right after the alter may take %s, longer than the old window %s that resolvers elsewhere still apply", bound.Round(time.Millisecond), short)
			}
		})
	}
}
