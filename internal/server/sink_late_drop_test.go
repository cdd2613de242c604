package server

import (
	"context"
	"slices"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/sink"
)

// TestLateDropLeavesSinksOfTableCreatedAgain: two processes drop a table
// at about the same time, the faster one finishes, the table is created
// again and given a webhook sink (with dead letters); the slower drop,
// past its catalog checks, reaches the removal of the table's sinks. It
// removed them by the table's name: the new table's sink definition, and
// (deleted by name, on the embedded log) its dead letters' topic. It
// removes the definitions of the dropped table's sinks only, and deletes
// their dead letters' topics only.
func TestLateDropLeavesSinksOfTableCreatedAgain(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.CatalogRefresh = 50 * time.Millisecond
	r := runServer(t, cfg, seams{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hook := func(name string) *wailv1.Sink {
		return &wailv1.Sink{Table: "t", Name: name, Url: "http://127.0.0.1:9/" + name, Start: "beginning"}
	}
	if _, _, err := r.srv.sinks.Create(ctx, hook("old")); err != nil {
		t.Fatal(err)
	}
	dropped, ok := r.srv.catalog.Get("t")
	if !ok {
		t.Fatal("table t not served")
	}
	// The faster drop.
	if err := r.srv.catalog.Drop(ctx, "t", true, r.srv.dropHooks()); err != nil {
		t.Fatal(err)
	}
	created, _, err := r.srv.catalog.Create(ctx, catalog.Table{Name: "t"})
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	if created.CreatedAt.Equal(dropped.CreatedAt) {
		t.Fatal("the table created again has the dropped one's created_at")
	}
	for _, name := range []string{"old", "new"} { // "old": the same name again
		if _, _, err := r.srv.sinks.Create(ctx, hook(name)); err != nil {
			t.Fatalf("sink %s of the table created again: %v", name, err)
		}
		if err := r.srv.log.CreateTopic(ctx, sink.DeadLetterTopic("t", name), 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The slower drop reaches the deletion of the topics and the sinks.
	late := dropped
	late.State = catalog.Deleting
	if err := (topics{r.srv}).Unprovision(ctx, late); err != nil {
		t.Fatalf("the late drop: %v", err)
	}
	names, err := r.srv.sinks.TableSinks(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"new", "old"}) {
		t.Errorf("after the late drop of the dropped table, the sinks of the table created again are %v; want [new old]", names)
	}
	for _, name := range []string{"old", "new"} {
		if _, err := r.srv.log.Partitions(ctx, sink.DeadLetterTopic("t", name)); err != nil {
			t.Errorf("the dead letters' topic of sink %s of the table created again: %v", name, err)
		}
	}
}
