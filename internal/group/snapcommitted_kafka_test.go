package group

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCommittedSnapshotKafka: TestCommittedSnapshot on Kafka, where the
// group registry (wail.groups) is a compacted topic every wail of the
// cluster shares: whose snapshot the positions are is read back by
// another process's log, and a reset clears it.
func TestCommittedSnapshotKafka(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "snapshot-committed", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: fmt.Sprintf("t%d", time.Now().UnixNano()), Topic: topic, Partitions: 1, Created: time.Now().UnixMicro()}
	G := New(l, time.Minute)
	defer G.Close()
	id := takeAcked(t, G, tb, nil)
	other := New(realKafkaLog(t), time.Minute) // another process
	defer other.Close()
	if got := committedSnapshot(t, other, tb); got != id || id == 0 {
		t.Fatalf("on another process: %d, want the snapshot's end %d", got, id)
	}
	if err := other.Reset(context.Background(), tb, "g", map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	if got := committedSnapshot(t, G, tb); got != 0 {
		t.Fatalf("after a reset: %d, want 0", got)
	}
}
