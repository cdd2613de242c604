package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
)

// TestReleaseLeavesTopicsOfTableCreatedAgainHere: on the embedded log, a
// refresh finds a table served here dropped elsewhere and releases it
// (deletes its topics here, by name); a create of the name through this
// process between the refresh's decision and the deletion makes the new
// table's topics. The release deleted them: a table created and ready
// that could not take writes, or whose acknowledged writes were lost.
// It deletes them only while they are still the released table's.
func TestReleaseLeavesTopicsOfTableCreatedAgainHere(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.CatalogRefresh = 50 * time.Millisecond
	r := runServer(t, cfg, seams{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The table is dropped (elsewhere, as this process's refresh is told;
	// here for the test) and created again through this process before
	// the refresh's release of the dropped one reaches the deletion.
	dropped, _ := dropAndCreateAgain(ctx, t, r, 0)
	if err := r.srv.release(ctx, dropped); err != nil {
		t.Fatalf("release of the dropped table: %v", err)
	}
	for _, topic := range tableTopics("t") {
		if _, err := r.srv.log.Partitions(ctx, topic); err != nil {
			t.Errorf("topic %s of the table created again, after the release of the dropped one: %v", topic, err)
		}
	}
}

// dropAndCreateAgain drops table t through r and creates it again (with
// partitions, 0: the default), and returns once r's resolver runs the new
// table's partitions (a release of the dropped one waited for them, as if
// they were its own, for ever).
func dropAndCreateAgain(ctx context.Context, t *testing.T, r *running, partitions int32) (dropped, created catalog.Table) {
	t.Helper()
	dropped, ok := r.srv.catalog.Get("t")
	if !ok {
		t.Fatal("table t not served")
	}
	if err := r.srv.catalog.Drop(ctx, "t", true, r.srv.dropHooks()); err != nil {
		t.Fatal(err)
	}
	created, _, err := r.srv.catalog.Create(ctx, catalog.Table{Name: "t", Partitions: partitions})
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	if created.CreatedAt.Equal(dropped.CreatedAt) {
		t.Fatal("the table created again has the dropped one's created_at")
	}
	for !strings.HasPrefix(strings.Join(r.srv.resolver.Running(), " "), "t/") {
		if ctx.Err() != nil {
			t.Fatal("the resolver did not take up the table created again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return dropped, created
}
