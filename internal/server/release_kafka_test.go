package server

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// TestReleaseKeepsResolvingTableCreatedAgainHere: on Kafka, a release of
// a table dropped elsewhere forgets its topics (Log.Forget), by name,
// which also takes them out of the resolver's group subscription. A
// table of the name created again through this process, whose topics the
// resolver already consumes, must not lose them: its writes must still
// be resolved (their events published).
func TestReleaseKeepsResolvingTableCreatedAgainHere(t *testing.T) {
	t.Parallel()
	cfg, _, _, _ := kafkaRetentionConfig(t, "release_created_again")
	cfg.CatalogRefresh = 50 * time.Millisecond
	r := runServer(t, cfg, seams{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dropped, created := dropAndCreateAgain(ctx, t, r, 1)
	if err := r.srv.release(ctx, dropped); err != nil {
		t.Fatalf("release of the dropped table: %v", err)
	}
	if _, err := r.put(ctx, "k", "v"); err != nil {
		t.Fatalf("write to the table created again: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, committed, err := r.srv.progress(ctx, created)
		if err == nil && len(ends) == 1 && ends[0] > 0 && committed[0] >= ends[0] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the write to the table created again is not resolved 30 s after the release of the dropped table "+
				"(ends %v, committed %v, err %v; running %v)", ends, committed, err, r.srv.resolver.Running())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReleaseKeepsConditionsOfTableCreatedAgainHere: a release of a table
// dropped elsewhere clears its health conditions, which are named by the
// table's name (retention/<table>). A table of the name created again
// through this process, whose event topic's retention fell below its
// intents' (the condition raised for it), must keep its condition: it was
// cleared, and came back only at the next retention check (minutes).
func TestReleaseKeepsConditionsOfTableCreatedAgainHere(t *testing.T) {
	t.Parallel()
	cfg, adm, events, _ := kafkaRetentionConfig(t, "release_conditions")
	cfg.CatalogRefresh = 50 * time.Millisecond
	r := runServer(t, cfg, seams{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dropped, _ := dropAndCreateAgain(ctx, t, r, 1)
	setTopicConfig(ctx, t, adm, events, "retention.ms", "3600000")
	// A broker may answer DescribeConfigs with the old retention for a
	// moment (it applies the controller's change asynchronously).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r.srv.checkRetention(ctx, "t")
		c, ok := condition(r.srv.health, retentionComponent("t"))
		if ok && c.State == health.Degraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention condition of the table created again: %+v %v; want degraded", c, ok)
		}
	}
	if err := r.srv.release(ctx, dropped); err != nil {
		t.Fatalf("release of the dropped table: %v", err)
	}
	if c, ok := condition(r.srv.health, retentionComponent("t")); !ok || c.State != health.Degraded {
		t.Fatalf("retention condition of the table created again, after the release of the dropped one: %+v %v; want degraded", c, ok)
	}
}
