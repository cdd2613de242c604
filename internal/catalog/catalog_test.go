package catalog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store/pebble"
)

var defaults = Table{FailureMode: Transactional, VisibilityWindow: 10 * time.Second, Partitions: 8}

func TestCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := pebble.Open(dir, pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var provisioned []string
	prov := func(_ context.Context, tb Table) error { provisioned = append(provisioned, tb.Name); return nil }
	c, err := Open(ctx, st, prov, defaults)
	if err != nil {
		t.Fatal(err)
	}
	watch := make(chan Table, 4)
	if got := c.Watch(watch); len(got) != 0 {
		t.Fatalf("new catalog lists %v", got)
	}

	tb, created, err := c.Create(ctx, Table{Name: "orders", VisibilityWindow: time.Second})
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if tb.Partitions != 8 || tb.FailureMode != Transactional || tb.VisibilityWindow != time.Second {
		t.Fatalf("defaults not applied: %+v", tb)
	}
	if w := <-watch; w.Name != "orders" {
		t.Fatalf("watcher got %+v", w)
	}
	if _, created, err := c.Create(ctx, Table{Name: "orders", VisibilityWindow: time.Second}); err != nil || created {
		t.Fatalf("identical re-create: %v created=%v", err, created)
	}
	if _, _, err := c.Create(ctx, Table{Name: "orders", Partitions: 3}); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting re-create: %v", err)
	}
	for _, bad := range []Table{{Name: "Bad-Name"}, {Name: "w", VisibilityWindow: time.Microsecond}, {Name: "p", Partitions: 5000}, {Name: "f", FailureMode: 9}} {
		if _, _, err := c.Create(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if len(provisioned) != 1 {
		t.Fatalf("provisioned %v", provisioned)
	}

	st.Close()
	st, err = pebble.Open(dir, pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err = Open(ctx, st, prov, defaults)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c.Get("orders")
	if !ok || got.Partitions != 8 || got.VisibilityWindow != time.Second || got.CreatedAt.IsZero() {
		t.Fatalf("after reopen: %+v %v", got, ok)
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

// TestRefreshSeesTablesOfOtherProcesses: two catalogs on one store, as two
// proxies sharing a database.
func TestRefreshSeesTablesOfOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	noop := func(context.Context, Table) error { return nil }
	var provisioned []string
	a, _ := Open(ctx, st, noop, defaults)
	b, _ := Open(ctx, st, func(_ context.Context, tb Table) error { provisioned = append(provisioned, tb.Name); return nil }, defaults)
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
	if w := <-watch; w.Name != "shared" || len(provisioned) != 1 {
		t.Fatalf("watcher got %+v, provisioned %v", w, provisioned)
	}
	if err := b.Refresh(ctx); err != nil || len(provisioned) != 1 {
		t.Fatalf("a second refresh: %v, provisioned %v", err, provisioned)
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
	noop := func(context.Context, Table) error { return nil }
	withRetry := defaults
	withRetry.MaxAttempts, withRetry.MaxRetryTime = 20, 2*time.Minute
	c, err := Open(ctx, st, noop, withRetry)
	if err != nil {
		t.Fatal(err)
	}
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
	c2, err := Open(ctx, st, noop, defaults) // the package defaults
	if err != nil {
		t.Fatal(err)
	}
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
