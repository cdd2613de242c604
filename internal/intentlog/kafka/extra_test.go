package kafka

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// forBoth runs fn on a kfake cluster and on the real broker (skipped when
// there is none, outside CI). create registers topics for deletion.
func forBoth(t *testing.T, fn func(t *testing.T, brokers []string, create func(string) string)) {
	t.Run("fake", func(t *testing.T) {
		fn(t, fakeBrokers(t), func(s string) string { return s })
	})
	t.Run("kafka", func(t *testing.T) {
		brokers := realBrokers(t)
		j := newJanitor(t, brokers)
		fn(t, brokers, func(s string) string {
			name := topicName(s)
			j.add(name)
			return name
		})
	})
}

func TestTopicConfigs(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		l := openLog(t, brokers, nil)
		ctx := testCtx(t, 20*time.Second)
		plain, events := name("plain"), name("events")
		if err := l.CreateTopic(ctx, plain, 3, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		opts := intentlog.TopicOptions{Retention: time.Hour, RetentionBytes: 1 << 20, Compact: true}
		if err := l.CreateTopic(ctx, events, 2, opts); err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]string{
			plain: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1", "max.message.bytes": "4194304"},
			// min.compaction.lag.ms: a delete's event outlives compaction
			// as long as its tombstone does (delete.retention.ms), for a
			// consumer that is behind: wail's streams pass tombstones, and
			// without it the event went at the next compaction, so such a
			// consumer never saw the delete (deleteEventLag).
			events: {"cleanup.policy": "compact,delete", "retention.ms": "3600000", "retention.bytes": "1048576", "min.compaction.lag.ms": "86400000"},
		}
		rcs, err := l.adm.DescribeTopicConfigs(ctx, plain, events)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			got := map[string]string{}
			for _, c := range rc.Configs {
				got[c.Key] = c.MaybeValue()
			}
			for k, v := range want[rc.Name] {
				if got[k] != v {
					t.Errorf("%s: %s = %q, want %q", rc.Name, k, got[k], v)
				}
			}
		}
		err = l.CreateTopic(ctx, plain, 4, intentlog.TopicOptions{})
		if !errors.Is(err, intentlog.ErrPartitionMismatch) || !strings.Contains(err.Error(), "has 3 partitions, 4 requested") {
			t.Errorf("CreateTopic over a 3-partition topic with 4: %v", err)
		}
	})
}

func TestTooLarge(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, 20*time.Second)
		big := []*intentlog.Record{{Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 8<<10)}}
		// Refused by the client: over Options.MaxMessageBytes.
		small := openLog(t, brokers, func(o *Options) { o.MaxMessageBytes = 4 << 10 })
		topic := name("client-limit")
		if err := small.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := small.Append(ctx, topic, big); !errors.Is(err, intentlog.ErrTooLarge) {
			t.Errorf("Append over MaxMessageBytes: %v, want ErrTooLarge", err)
		}
		// Refused by the broker: over the topic's max.message.bytes.
		l := openLog(t, brokers, func(o *Options) { o.TopicConfigs = map[string]string{"max.message.bytes": "4096"} })
		topic = name("broker-limit")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, topic, big); !errors.Is(err, intentlog.ErrTooLarge) {
			t.Errorf("Append over the topic's max.message.bytes: %v, want ErrTooLarge", err)
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("fits")}}); err != nil {
			t.Errorf("Append after a refused one: %v", err)
		}
	})
}

// TestReaderBelowLogStart: records deleted under a reader (as retention
// does) make it fail with ErrOffsetOutOfRange, never skip silently.
func TestReaderBelowLogStart(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		l := openLog(t, brokers, nil)
		ctx := testCtx(t, 20*time.Second)
		topic := name("trimmed")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		appendN := func(n int) {
			recs := make([]*intentlog.Record, n)
			for i := range recs {
				recs[i] = &intentlog.Record{Key: []byte("k"), Value: []byte("v")}
			}
			if err := l.Append(ctx, topic, recs); err != nil {
				t.Fatal(err)
			}
		}
		appendN(6)
		// A reader made before the trim and first used after it: its
		// position (0) is below the log start by then.
		r, err := l.NewReader(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		offs := kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1}}}
		if _, err := l.adm.DeleteRecords(ctx, offs); err != nil {
			t.Fatal(err)
		}
		if start, end, err := l.Bounds(ctx, topic, 0); err != nil || start != 4 || end != 6 {
			t.Fatalf("Bounds after DeleteRecords = %d, %d, %v; want 4, 6", start, end, err)
		}
		if _, err := r.Next(ctx); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
			t.Errorf("Next of a reader at 0 with the log starting at 4: %v, want ErrOffsetOutOfRange", err)
		}
		if recs, err := readOne(ctx, l, topic, 4); err != nil || recs[0].Offset != 4 {
			t.Errorf("reader at the new log start: %v, %v", recs, err)
		}
		if err := firstNext(ctx, l, topic, 2); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
			t.Errorf("new reader at 2, log start 6: %v, want ErrOffsetOutOfRange", err)
		}
	})
}

func readOne(ctx context.Context, l *Log, topic string, off int64) ([]intentlog.Record, error) {
	r, err := l.NewReader(topic, 0, off)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Next(ctx)
}

func firstNext(ctx context.Context, l *Log, topic string, off int64) error {
	r, err := l.NewReader(topic, 0, off)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = r.Next(ctx)
	return err
}
