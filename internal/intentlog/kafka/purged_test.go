package kafka

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// keyFor returns a key that intentlog.Partition places on partition p of n.
func keyFor(t *testing.T, p, n int32) []byte {
	t.Helper()
	for i := range 1000 {
		k := []byte{'k', byte('a' + i%26), byte('a' + i/26)}
		if intentlog.Partition(k, n) == p {
			return k
		}
	}
	t.Fatalf("no key for partition %d", p)
	return nil
}

// TestAppendPurgedMeanwhileRetried: an Append refused for an unknown
// topic (UNKNOWN_TOPIC_ID: deleted and created again by another process)
// purges the topic from the client and tries again, and so does Forget
// (a table another process dropped, maybe created anew). Another Append to
// the same topic, in flight at that moment (here on a partition of another
// broker, whose answer is held), was failed by the purge with franz-go's
// "topic purged while buffered" and not tried again: the proxy answered an
// error for a write that a retry would have taken. An Append that fails
// while its topic was purged now tries again. Its first records may land
// all the same (the held request is answered after the purge): the
// partition may hold them twice, which intents, idempotent per version,
// allow.
func TestAppendPurgedMeanwhileRetried(t *testing.T) {
	for _, trigger := range []string{"another append refused", "forget"} {
		t.Run(trigger, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(2))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ctx := testCtx(t, time.Minute)
			topic := topicName("purged")
			const n = 2
			// One refusal fails an append (the client's default is 4).
			l := openLog(t, c.ListenAddrs(), func(o *Options) { o.ExtraClientOpts = []kgo.Opt{kgo.UnknownTopicRetries(0)} })
			if err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			// A's and B's partitions on different brokers: B's request is
			// held while A's are answered.
			pA, pB := int32(0), int32(1)
			if err := c.MoveTopicPartition(topic, pB, 1-c.LeaderFor(topic, pA)); err != nil {
				t.Fatal(err)
			}

			var released atomic.Bool
			release := make(chan struct{})
			bHeld := make(chan struct{})
			var holdOnce sync.Once
			var refusals atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if released.Load() {
					return nil, nil, false
				}
				r := req.(*kmsg.ProduceRequest)
				var parts []int32
				for _, rt := range r.Topics {
					for _, rp := range rt.Partitions {
						parts = append(parts, rp.Partition)
					}
				}
				if slices.Contains(parts, pB) { // B's request: answered after the purge
					holdOnce.Do(func() { close(bHeld) })
					c.SleepControl(func() { <-release })
					return nil, nil, false
				}
				if !slices.Contains(parts, pA) || refusals.Add(1) > 1 {
					return nil, nil, false
				}
				// A's first request: the topic is unknown (as after it was
				// created again elsewhere).
				resp := r.ResponseKind().(*kmsg.ProduceResponse)
				resp.Version = r.Version
				for _, rt := range r.Topics {
					st := kmsg.NewProduceResponseTopic()
					st.Topic, st.TopicID = rt.Topic, rt.TopicID
					for _, rp := range rt.Partitions {
						sp := kmsg.NewProduceResponseTopicPartition()
						sp.Partition, sp.ErrorCode, sp.BaseOffset = rp.Partition, kerr.UnknownTopicID.Code, -1
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})

			rec := func(p int32, v string) []*intentlog.Record {
				return []*intentlog.Record{{Key: keyFor(t, p, n), Value: []byte(v)}}
			}
			bErr := make(chan error, 1)
			recB := rec(pB, "b")
			go func() { bErr <- l.Append(ctx, topic, recB) }()
			select {
			case <-bHeld:
			case <-ctx.Done():
				t.Fatal("B's request never reached the broker")
			}
			switch trigger {
			case "another append refused":
				if err := l.Append(ctx, topic, rec(pA, "a")); err != nil {
					t.Fatalf("append A, refused once for an unknown topic: %v; want it tried again and taken", err)
				}
				if refusals.Load() == 0 {
					t.Fatal("A's append was never refused")
				}
			case "forget":
				l.Forget(topic)
			}
			released.Store(true)
			close(release)
			if err := <-bErr; err != nil {
				t.Fatalf("append B, in flight when the topic was purged: %v; want it tried again and taken", err)
			}
			if got := readValues(t, ctx, l, topic, pB); len(got) < 1 || len(got) > 2 || got[0] != "b" || got[len(got)-1] != "b" {
				t.Fatalf("B's partition %d holds %q; want b, maybe twice", pB, got)
			} else {
				t.Logf("B's partition holds %q", got)
			}
		})
	}
}

// TestPurgeOncePerRefusal: of Appends refused for one stale topic id
// (records handed to the client before any purge), only the first purges
// the topic; a second purge would fail the others' new tries, handed to
// the client after the first. A purge's start and end both count, and so
// does Forget's.
func TestPurgeOncePerRefusal(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	const topic = "t"
	gen := l.purgeGen(topic)
	l.purge(topic, gen) // the first refused Append
	if got := l.purgeGen(topic); got != gen+2 {
		t.Fatalf("after a purge the count is %d, want %d (start and end)", got, gen+2)
	}
	l.purge(topic, gen) // another, refused for the same id
	if got := l.purgeGen(topic); got != gen+2 {
		t.Fatalf("a second purge for the same refusal ran (count %d)", got)
	}
	l.Forget(topic)
	if got := l.purgeGen(topic); got != gen+4 {
		t.Fatalf("after Forget the count is %d, want %d", got, gen+4)
	}
}

// TestAppendTimestampsNeverGoBack: the records of an Append are stamped
// with one timestamp never below one handed out before, though the clock
// went back (here: a stamp an hour ahead handed out already); so are a
// member's transactions.
func TestAppendTimestampsNeverGoBack(t *testing.T) {
	t.Parallel()
	l := openLog(t, fakeBrokers(t), nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("stamps")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(time.Hour).UnixMilli()
	l.produceMu.Lock()
	l.lastMilli = ahead
	l.produceMu.Unlock()
	recs := []*intentlog.Record{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp.UnixMilli() != ahead {
			t.Fatalf("record stamped %v after %v was handed out; want the same", r.Timestamp, time.UnixMilli(ahead))
		}
	}
	// A member's transactions too (per shard, over both its producers).
	m, sh := &Member{l: l}, &txnShard{lastMilli: ahead}
	krs, err := m.records(ctx, sh, map[string][]*intentlog.Record{topic: recs})
	if err != nil {
		t.Fatal(err)
	}
	for _, kr := range krs {
		if kr.Timestamp.UnixMilli() != ahead {
			t.Fatalf("transaction's record stamped %v after %v was handed out; want the same", kr.Timestamp, time.UnixMilli(ahead))
		}
	}
}
