package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// addPartitions adds partitions to a topic from another client, as an
// operator does with kafka-topics.sh --alter --partitions while wail runs.
func addPartitions(t *testing.T, ctx context.Context, brokers []string, topic string, add int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreatePartitions(ctx, add, topic)
	if err == nil {
		var r kadm.CreatePartitionsResponse
		if r, err = resp.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("adding %d partitions to %s: %v", add, topic, err)
	}
}

// TestPlacementKeepsCountAfterPartitionsAdded: partitions added to a
// topic behind wail's back must not move keys of a running Log. Append
// (and a Member's Transact) place keys by a cached count, but every fresh
// read of the metadata replaced it: Partitions (what `wail table
// reconcile` asks before it runs), a CreateTopic, a reader's check of a
// vanished topic. After one of them, Append placed a key on another
// partition than its earlier records: per-key order broke for consumers,
// and its intents went to partitions the table does not have.
func TestPlacementKeepsCountAfterPartitionsAdded(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		topic := name("added")
		l := openLog(t, brokers, nil)
		if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		var key []byte // a key that moves when the topic grows to 6
		for i := 0; ; i++ {
			key = fmt.Appendf(nil, "k%d", i)
			if intentlog.Partition(key, 2) != intentlog.Partition(key, 6) {
				break
			}
		}
		first := []*intentlog.Record{{Key: key, Value: []byte("v1")}}
		if err := l.Append(ctx, topic, first); err != nil {
			t.Fatal(err)
		}
		addPartitions(t, ctx, brokers, topic, 4)
		var n int32
		for n != 6 { // the brokers' metadata catches up
			var err error
			if n, err = l.Partitions(ctx, topic); err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("the topic has %d partitions, want 6", n)
			}
		}
		if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err == nil {
			t.Fatal("CreateTopic with 2 partitions over 6: no error, want ErrPartitionMismatch")
		}
		second := []*intentlog.Record{{Key: key, Value: []byte("v2")}}
		if err := l.Append(ctx, topic, second); err != nil {
			t.Fatal(err)
		}
		if second[0].Partition != first[0].Partition {
			t.Fatalf("key %s went to partition %d after partitions were added, its earlier record to %d: keys moved", key, second[0].Partition, first[0].Partition)
		}
	})
}
