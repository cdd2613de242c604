package sink

import (
	"context"
	"errors"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSyncRunsWhatIsDefinedHere: Sync runs a sink only for a table this
// process serves (one of another table is stopped here), runs a changed
// definition as changed (the configuration's sink moved to another URL
// delivers there from then on), stops a dropped one before the drop
// returns, and starts nothing once the manager is
// closed (a create or drop racing Close syncs after it).
func TestSyncRunsWhatIsDefinedHere(t *testing.T) {
	f := newFixture(t, 1)
	ep1, ep2 := newEndpoint(t, ""), newEndpoint(t, "")
	ctx := context.Background()
	m := f.manager()
	defer m.Close()

	if err := m.Apply(ctx, &wailv1.Sink{Table: "other", Name: "s", Url: ep1.url()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Describe(ctx, "other", "s"); err != nil || st.State != "stopped" {
		t.Fatalf("a sink of a table not served here: %v, %v; want it stopped", st, err)
	}

	if err := m.Apply(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep1.url(), MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1))
	waitFor(t, "a@1 at the first URL", time.Minute, func() bool { return received(ep1, "a", 1) == 1 })
	if err := m.Apply(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep2.url(), MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.publish(event("b", 1))
	waitFor(t, "b@1 at the URL the definition names now", time.Minute, func() bool { return received(ep2, "b", 1) == 1 })
	if n := received(ep1, "b", 1); n != 0 {
		t.Fatalf("b@1 went %d times to the URL of before", n)
	}

	// A drop's Sync returns once the runner stopped: nothing of the sink
	// is delivered after it.
	r, err := m.runner(&wailv1.Sink{Table: testTable, Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Drop(ctx, testTable, "s"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	default:
		t.Fatal("Drop returned before the sink's runner stopped")
	}

	m.Close()
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.runners)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d runners after a Sync that followed Close, want none", n)
	}
}

// TestCreateOverTheConfigurationsSink: a sink the configuration defines
// (Apply: for any table of the name, table_created_at_us 0) is not
// replaced by a create of its name with another definition: the create
// conflicts, as with a definition created for the same table. (Only a
// definition recorded for an earlier table of the name gives way.)
func TestCreateOverTheConfigurationsSink(t *testing.T) {
	f := newFixture(t, 1)
	ep1, ep2 := newEndpoint(t, ""), newEndpoint(t, "")
	ctx := context.Background()
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond,
		Table:       func(name string) (group.Table, bool) { return f.tbl, name == testTable },
		Incarnation: func(string) int64 { return 5 }})
	m.Start(ctx)
	defer m.Close()
	if err := m.Apply(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep1.url()}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep2.url()}); !errors.Is(err, ErrConflict) || created {
		t.Fatalf("create over the configuration's sink: created %v, %v; want ErrConflict", created, err)
	}
	if st, err := m.Describe(ctx, testTable, "s"); err != nil || st.Sink.GetUrl() != ep1.url() {
		t.Fatalf("the sink after the create: %v, %v; want the configuration's", st, err)
	}
	// Nor is one created for this table (its created_at) by another.
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s2", Url: ep1.url()}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s2", Url: ep2.url()}); !errors.Is(err, ErrConflict) || created {
		t.Fatalf("create over a sink of the same table: created %v, %v; want ErrConflict", created, err)
	}
}
