package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// TestKafkaAddedPartitionsReported: partitions added to a table's topic
// behind a running wail's back (kafka-topics.sh --alter --partitions)
// were said only by wail doctor and by a restart, which no longer serves
// the table. The running process keeps placing keys by the table's count
// (no key moves), so nothing failed either: the operator learnt of it at
// the restart. Now every log.kafka.retention_check compares the topics'
// counts with the table's and raises partitions/<table>, naming the topic,
// both counts and what to do.
func TestKafkaAddedPartitionsReported(t *testing.T) {
	t.Parallel()
	cfg, adm, events, _ := kafkaRetentionConfig(t, "parts_")
	cfg.Log.Kafka.RetentionCheck = time.Second // the least
	r := runServer(t, cfg, seams{})
	defer stopRun(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if c, ok := condition(r.srv.health, "partitions/t"); ok && c.State != health.OK {
		t.Fatalf("partitions condition before any change: %+v", c)
	}
	resp, err := adm.CreatePartitions(ctx, 2, events)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, ok := condition(r.srv.health, "partitions/t")
		if ok && c.State == health.Degraded {
			if !strings.Contains(c.Reason, events+" of table t has 3 partitions, the table 1") || !strings.Contains(c.Action, "wail table drop t") {
				t.Fatalf("partitions condition %+v: want it to name %s, both counts and what to do", c, events)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partitions/t condition 15 s after partitions were added to %s (checks every second): %+v", events, c)
		}
	}
	if _, err := r.put(ctx, "k", "v2"); err != nil {
		t.Fatalf("a write after partitions were added: %v; want it taken (keys keep their partitions)", err)
	}
}
