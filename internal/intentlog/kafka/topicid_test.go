package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestDeleteTopicIDLeavesTopicMadeAgain: a dropped table's topics were
// deleted by name, and a drop's deletion that reached Kafka late (two
// processes dropped the table, the slower one paused) deleted the topics
// of the table created again since under the name, with the writes
// acknowledged on them. A deletion by the id the topic had when the drop
// began leaves the topic made again; one of the topic still there deletes
// it, and forgets what the log knew of it (its record limit).
func TestDeleteTopicIDLeavesTopicMadeAgain(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		topic, absent := name("topicid"), name("topicid-absent")
		l := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
		})
		if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.RecordLimit(ctx, topic); err != nil { // read, and kept
			t.Fatal(err)
		}
		other := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "20000"}
		})
		ids, err := l.TopicIDs(ctx, topic, absent)
		if err != nil {
			t.Fatal(err)
		}
		old, ok := ids[topic]
		if _, listed := ids[absent]; !ok || listed || old == (intentlog.TopicID{}) {
			t.Fatalf("TopicIDs = %v; want an id for %s only", ids, topic)
		}
		// The faster dropper deletes it, and the table is created again.
		if err := l.DeleteTopicID(ctx, topic, old); err != nil {
			t.Fatalf("DeleteTopicID of the topic: %v", err)
		}
		for {
			err := other.CreateTopic(ctx, topic, 3, intentlog.TopicOptions{})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("creating the topic again: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // still being deleted
		}
		// The deletion forgot what the log knew of the topic (as Forget).
		if n, source, err := l.RecordLimit(ctx, topic); err != nil || n != 20000-brokerBatchOverhead {
			t.Fatalf("RecordLimit after DeleteTopicID = %d (%s), %v; want %d (the new topic's)", n, source, err, 20000-brokerBatchOverhead)
		}
		recs := []*intentlog.Record{{Key: []byte("k"), Value: []byte("new")}}
		if err := l.Append(ctx, topic, recs); err != nil {
			t.Fatal(err)
		}
		// The slower dropper's deletion arrives.
		if err := l.DeleteTopicID(ctx, topic, old); err != nil {
			t.Fatalf("a late DeleteTopicID by the old id: %v; want nil", err)
		}
		if n, err := l.Partitions(ctx, topic); err != nil || n != 3 {
			t.Fatalf("after a late deletion by the old id, the topic made again: %d partitions, %v; want 3, kept", n, err)
		}
		if got := readValues(t, ctx, l, topic, recs[0].Partition); len(got) != 1 || got[0] != "new" {
			t.Fatalf("the topic made again holds %q; want [new]", got)
		}
	})
}

// TestDeleteTopicIDEndsWhenMadeAgain: DeleteTopicID waits for the
// metadata to drop the id it deleted, and ends as well when the name
// comes back with another id (a table created again at once by another
// process) instead of waiting for the name to go. On kfake, whose
// deletion is answered here but done by the other process.
func TestDeleteTopicIDEndsWhenMadeAgain(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, time.Minute)
	l, other := openLog(t, c.ListenAddrs(), nil), openLog(t, c.ListenAddrs(), nil)
	topic := topicName("topicid-again")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	ids, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c.ControlKey(int16(kmsg.DeleteTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.DeleteTopicsRequest)
		resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	made := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		if err := other.DeleteTopic(ctx, topic); err != nil {
			made <- err
			return
		}
		made <- other.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{})
	}()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.DeleteTopicID(dctx, topic, ids[topic]); err != nil {
		t.Fatalf("DeleteTopicID while the topic is made again: %v; want it to end", err)
	}
	if err := <-made; err != nil {
		t.Fatal(err)
	}
}
