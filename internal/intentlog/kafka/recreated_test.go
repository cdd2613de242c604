package kafka

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendAfterRecreatedElsewhere: a table dropped and created again by
// another process is a topic with a new id. The client of this process
// still held the old one, so its first Append failed with UNKNOWN_TOPIC_ID
// (ErrUnknownTopic), which the proxy answers failed_precondition and the
// client's Producer does not retry: the write was lost although a retry,
// after the topic was purged from the client, would have been taken. Append
// now tries once more itself after the purge.
func TestAppendAfterRecreatedElsewhere(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		topic := name("recreated")
		l := openLog(t, brokers, nil)
		if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		rec := func(v string) []*intentlog.Record {
			return []*intentlog.Record{{Key: []byte(v), Value: []byte(v)}}
		}
		if err := l.Append(ctx, topic, rec("old")); err != nil {
			t.Fatal(err) // the client now holds the topic's id
		}
		other := openLog(t, brokers, nil) // another process drops and creates the table
		if err := other.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		for {
			err := other.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("creating the topic again: %v", err)
			}
			t.Logf("creating the topic again: %v", err) // still being deleted
			time.Sleep(200 * time.Millisecond)
		}
		recs := rec("new")
		if err := l.Append(ctx, topic, recs); err != nil {
			t.Fatalf("first append after the topic was created again elsewhere: %v; want it taken", err)
		}
		got := readValues(t, ctx, other, topic, recs[0].Partition)
		if len(got) != 1 || got[0] != "new" {
			t.Fatalf("the new topic's partition %d holds %q; want [new]", recs[0].Partition, got)
		}
	})
}
