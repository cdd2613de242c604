package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// missingOnce is a backend whose Tables, once armed, leaves one table out
// of its next answer and answers the one after (the recheck of the table
// missing) with recheck.
type missingOnce struct {
	Backend
	mu      sync.Mutex
	armed   int // 2: leave out name; 1: recheck
	name    string
	recheck func(ctx context.Context) ([]store.Table, error)
}

func (b *missingOnce) Tables(ctx context.Context) ([]store.Table, error) {
	b.mu.Lock()
	step := b.armed
	if b.armed > 0 {
		b.armed--
	}
	b.mu.Unlock()
	switch step {
	case 2:
		rows, err := b.Backend.Tables(ctx)
		return slices.DeleteFunc(rows, func(r store.Table) bool { return r.Name == b.name }), err
	case 1:
		return b.recheck(ctx)
	}
	return b.Backend.Tables(ctx)
}

// TestMissingTableKeptWhenTheRecheckFails: a table served here that a
// catalog read left out, and whose recheck failed, is still served (the
// read said nothing about it): a store that misread once stopped the
// table's writes and resolvers here until the next refresh, which then
// announced it as new.
func TestMissingTableKeptWhenTheRecheckFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := &missingOnce{Backend: openStore(t), name: "x",
		recheck: func(context.Context) ([]store.Table, error) { return nil, errors.New("store down") }}
	c := openCatalog(t, b, newTopics())
	if _, _, err := c.Create(ctx, Table{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.armed = 2
	b.mu.Unlock()
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("a refresh whose recheck failed reported nothing")
	}
	if _, ok := c.Get("x"); !ok {
		t.Error("x is no longer served after a read that missed it and a recheck that failed")
	}
	if _, ok := c.Resolving("x"); !ok {
		t.Error("x is no longer resolved after a read that missed it and a recheck that failed")
	}
}

// TestReleaseWhenMarkedDeletingElsewhere: a table served here that
// another process marked deleting is released at the refresh that sees
// it so (Options.Release), not only once its entry is gone: a drop that
// stopped there (until run again) left the topics here meanwhile.
func TestReleaseWhenMarkedDeletingElsewhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	var (
		mu       sync.Mutex
		released []Table
	)
	c := openCatalog(t, st, newTopics(), func(o *Options) {
		o.Release = func(_ context.Context, t Table) error {
			mu.Lock()
			defer mu.Unlock()
			released = append(released, t)
			return nil
		}
	})
	tb, _, err := c.Create(ctx, Table{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rows, func(r store.Table) bool { return r.Name == "x" })
	del := tb
	del.State = Deleting
	spec, err := del.encodeOver(rows[i].Spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.SwapTable(ctx, "x", rows[i].Spec, spec); err != nil || !ok {
		t.Fatalf("marking x deleting: %v %v", ok, err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Resolving("x"); ok {
		t.Error("x is still resolved once marked deleting")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(released) != 1 || released[0].Name != "x" || !released[0].CreatedAt.Equal(tb.CreatedAt) {
		t.Errorf("released %+v, want x as created", released)
	}
}

// TestMissingTableFoundDamagedIsNotReleased: a table served here that a
// catalog read left out, and whose recheck finds its entry unreadable, is
// held (its created_at cannot be read, not that it changed): released, its
// topics were deleted here, records and all, while the entry may only need
// restoring.
func TestMissingTableFoundDamagedIsNotReleased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	var released []Table
	b := &missingOnce{Backend: st, name: "x"}
	b.recheck = func(ctx context.Context) ([]store.Table, error) {
		rows, err := st.Tables(ctx)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(rows, func(r store.Table) bool { return r.Name == "x" })
		if _, ok, err := st.SwapTable(ctx, "x", rows[i].Spec, []byte{0xff, 0xff, 0xff}); err != nil || !ok {
			return nil, fmt.Errorf("damaging the entry: %v %w", ok, err)
		}
		return st.Tables(ctx)
	}
	c := openCatalog(t, b, newTopics(), func(o *Options) {
		o.Release = func(_ context.Context, t Table) error { released = append(released, t); return nil }
	})
	if _, _, err := c.Create(ctx, Table{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.armed = 2
	b.mu.Unlock()
	_ = c.Refresh(ctx)
	if len(released) != 0 {
		t.Errorf("released %+v, whose entry the recheck found damaged", released)
	}
}

// TestNeverServedIsNotReleased: a table this process read but could not
// serve (its topics could not be made here), then dropped elsewhere, is
// not released here (Options.Release is for tables served here): nothing
// of it was made here.
func TestNeverServedIsNotReleased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	creator := openCatalog(t, st, newTopics())
	failing := newTopics()
	failing.fail = func(Table) error { return errors.New("log down") }
	var released []Table
	c := openCatalog(t, st, failing, func(o *Options) {
		o.Release = func(_ context.Context, t Table) error { released = append(released, t); return nil }
	})
	if _, _, err := creator.Create(ctx, Table{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("a table whose topics cannot be made here was served")
	}
	h := &dropHooks{ends: [][]int64{{0}}}
	if err := creator.Drop(ctx, "x", true, h.hooks()); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh after the drop: %v", err)
	}
	if len(released) != 0 {
		t.Errorf("released %+v, never served here", released)
	}
}
