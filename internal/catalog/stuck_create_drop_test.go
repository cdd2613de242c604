package catalog

import (
	"context"
	"testing"
	"time"
)

// TestDropEndsStuckCreateHere: a create here whose making of the table's
// topics the log does not answer (it heeds cancellation), and a forced
// drop here of that table (the operator removing what the create left):
// the drop ends the create's making, as it ends a refresh's, and
// finishes within its deadline. Since a create's making took the topic
// lock, the drop waited for it until its deadline and failed, "waiting
// for this process's making of them to end (a catalog refresh began
// it...)", for as long as the create waited.
func TestDropEndsStuckCreateHere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	prov := stuckTopics{topics: newTopics(), table: "stuck", release: make(chan struct{})}
	defer close(prov.release)
	cat := openCatalog(t, st, prov, func(o *Options) { o.Refresh = 100 * time.Millisecond })
	created := make(chan error, 1)
	go func() {
		_, _, err := cat.Create(ctx, Table{Name: "stuck", Partitions: 1})
		created <- err
	}()
	for {
		if s, ok := saved(t, st, "stuck"); ok && s.State == Creating {
			break
		}
		select {
		case err := <-created:
			t.Fatalf("the create ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	h := &dropHooks{ends: [][]int64{{0}}, committed: []int64{0}}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := cat.Drop(dctx, "stuck", true, h.hooks()); err != nil {
		t.Fatalf("the forced drop of the table whose create here is stuck: %v", err)
	}
	select {
	case err := <-created:
		if err == nil {
			t.Error("the create succeeded after the drop")
		}
		t.Logf("the create: %v", err)
	case <-time.After(2 * time.Second):
		t.Error("the create still waits for its making after the drop")
	}
	if _, ok := saved(t, st, "stuck"); ok {
		t.Error("the entry is left")
	}
	if prov.has("stuck") {
		t.Error("the topics are left")
	}
}
