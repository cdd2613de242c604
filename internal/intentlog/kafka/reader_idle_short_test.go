package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestIdleReaderRecreatedShorter: a topic deleted and created again while
// its reader was released, and holding fewer records than the reader's
// position (or none), fails the next Next with ErrUnknownTopic, as a
// reader that kept its client does (UNKNOWN_TOPIC_ID); so does a topic
// deleted and not created again (again -1). The client made
// again validated the position's leader epoch against the new topic,
// whose epoch 0 ends below it: a Truncation from the new topic's end,
// which an event stream rewinds to, and a group member reports as events
// lost, while the topic is another one.
func TestIdleReaderRecreatedShorter(t *testing.T) {
	for _, again := range []int{10, 0, -1} {
		t.Run(fmt.Sprintf("again%d", again), func(t *testing.T) {
			brokers := realBrokers(t)
			ctx := testCtx(t, 2*time.Minute)
			l := openLog(t, brokers, func(o *Options) { o.ReaderIdle = 200 * time.Millisecond })
			topic := topicName("idleshort")
			newJanitor(t, brokers).add(topic)
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			put := func(prefix string, n int) {
				t.Helper()
				if n <= 0 {
					return
				}
				batch := make([]*intentlog.Record, 0, n)
				for j := 0; j < n; j++ {
					batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "%s%d", prefix, j), Value: []byte("v")})
				}
				if err := l.Append(ctx, topic, batch); err != nil {
					t.Fatal(err)
				}
			}
			put("old", 100)
			rd, err := l.NewReader(topic, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			for rd.Position() < 100 {
				if _, err := rd.Next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			waitReleased(t, rd)
			if err := l.DeleteTopic(ctx, topic); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); again >= 0; time.Sleep(200 * time.Millisecond) {
				err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("create again: %v", err)
				}
			}
			put("new", again)
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			recs, err := rd.Next(nctx)
			if !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("Next at 100 after the topic was created again with %d records = %d records, %v; want ErrUnknownTopic", again, len(recs), err)
			}
		})
	}
}
