package server

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
)

// TestKafkaLateDropLeavesTopicsMadeAgain: a drop deleted a table's Kafka
// topics by name, so one that reached Kafka late (two processes dropped
// the table; the table was created again before the slower one deleted)
// deleted the new table's topics, with the writes acknowledged on them.
// Unprovision of a table whose topic ids were saved (catalog.TopicIDReader)
// deletes by those ids, under the configured topic names, and leaves
// topics made again under the names.
func TestKafkaLateDropLeavesTopicsMadeAgain(t *testing.T) {
	t.Parallel()
	cfg, _, _, _ := kafkaRetentionConfig(t, "late_")
	r := runServer(t, cfg, seams{})
	defer stopRun(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := topics{r.srv}
	tb, ok := r.srv.catalog.Get("t")
	if !ok {
		t.Fatal("table t not served")
	}
	old, err := p.TopicIDs(ctx, tb)
	if err != nil || len(old) != 3 {
		t.Fatalf("TopicIDs = %v, %v; want the ids of the 3 topics of t", old, err)
	}
	// Dropped and created again elsewhere.
	for topic := range old {
		if err := r.srv.log.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	for {
		err := p.Provision(ctx, tb)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("making the topics again: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // still being deleted
	}
	// The slower drop's deletion arrives.
	late := tb
	late.State, late.TopicIDs = catalog.Deleting, &old
	if err := p.Unprovision(ctx, late); err != nil {
		t.Fatalf("a late Unprovision by the old ids: %v", err)
	}
	now, err := p.TopicIDs(ctx, tb)
	if err != nil {
		t.Fatal(err)
	}
	for topic, id := range old {
		if n, ok := now[topic]; !ok || n == id {
			t.Errorf("after a late drop by the old ids, topic %s: id %x (found %v); want the one made again, kept", topic, n, ok)
		}
	}
}
