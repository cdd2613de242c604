package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
)

// TestKafkaIntentTopicRecreatedWhileRunning: an operator deletes a
// table's intent topic and creates it again (same name, offsets from 0)
// while wail runs. The resolver's position on the old topic is past the
// new topic's start (Kafka deletes a deleted topic's committed offsets,
// but the resolver's reader and loop still stood there). Checked: the
// reader fails with ErrUnknownTopic, the partition starts again and reads
// the new topic from its start, and every write taken on it gets an
// event, none skipped.
func TestKafkaIntentTopicRecreatedWhileRunning(t *testing.T) {
	t.Parallel()
	recreatedWhileRunning(t, "recr_", false)
}

// TestKafkaEventTopicRecreatedWhileRunning: the same with the event topic:
// the resolver's transactional producers hold the old topic's id, and
// every write taken after it was made again must get an event on it.
func TestKafkaEventTopicRecreatedWhileRunning(t *testing.T) {
	t.Parallel()
	recreatedWhileRunning(t, "recre_", true)
}

func recreatedWhileRunning(t *testing.T, name string, events bool) {
	cfg, adm, eventTopic, _ := kafkaRetentionConfig(t, name)
	intents := strings.Replace(cfg.Log.Kafka.IntentTopic, "{table}", "t", 1)
	recreate := intents
	if events {
		recreate = eventTopic
	}
	r := runServer(t, cfg, seams{})
	defer stopRun(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	putAll := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			for {
				_, err := r.put(ctx, fmt.Sprintf("%s%d", prefix, i), "v")
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("put %s%d: %v", prefix, i, err)
				}
				time.Sleep(100 * time.Millisecond) // the topic being made again
			}
		}
	}
	keys := func() map[string]bool {
		t.Helper()
		topic := eventbus.Topic("t")
		_, end, err := r.srv.log.Bounds(ctx, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := r.srv.log.NewReader(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		got := map[string]bool{}
		for rd.Position() < end {
			recs, err := rd.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				got[string(rec.Key)] = true
			}
		}
		return got
	}
	awaitEvents := func(want int) {
		t.Helper()
		for {
			got := len(keys())
			if got >= want {
				return
			}
			if ctx.Err() != nil {
				c, _ := condition(r.srv.health, "resolver/t/0")
				t.Fatalf("%d events on the bus, want %d: writes taken on the intent topic made again got no event (condition %+v)", got, want, c)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	putAll("old", 10)
	awaitEvents(10)
	if _, err := adm.DeleteTopics(ctx, recreate); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, recreate)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("creating %s again: %v", recreate, err)
		}
		time.Sleep(200 * time.Millisecond) // still being deleted
	}
	putAll("new", 30)
	want := 40
	if events {
		want = 30 // the old keys' events went with the topic
	} else if _, end, err := r.srv.log.Bounds(ctx, intent.Topic("t"), 0); err != nil || end != 30 {
		t.Fatalf("the intent topic made again ends at %d (%v), want 30: not made again", end, err)
	}
	awaitEvents(want)
	got := keys()
	for i := range 30 {
		if !got[fmt.Sprintf("new%d", i)] {
			t.Errorf("new%d: no event", i)
		}
	}
	if c, ok := condition(r.srv.health, "resolver/t/0"); ok && c.State != health.OK {
		t.Logf("condition after: %+v", c)
	}
}
