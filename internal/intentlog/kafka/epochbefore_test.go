package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestEpochsBeforeMatchesReader: the leader epoch EpochsBefore reads for
// an offset committed without a reader (a group's reset, start or
// snapshot end) is the one a reader that read the partition gives for it
// (EpochBefore): the epoch of the record before it, transaction markers
// and records of aborted transactions included, across leader changes;
// -1 at offset 0 and past the end. On kfake (leader changes) and on the
// real broker.
func TestEpochsBeforeMatchesReader(t *testing.T) {
	t.Parallel()
	for _, real := range []bool{false, true} {
		t.Run(fmt.Sprintf("real=%v", real), func(t *testing.T) {
			t.Parallel()
			var brokers []string
			var c *kfake.Cluster
			if real {
				brokers = realBrokers(t)
			} else {
				var err error
				if c, err = kfake.NewCluster(kfake.NumBrokers(3)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				brokers = c.ListenAddrs()
			}
			l := openLog(t, brokers, nil)
			ctx := testCtx(t, time.Minute)
			topic := topicName("epochsbefore")
			if real {
				j := newJanitor(t, brokers)
				j.add(topic)
			}
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			move := func() {
				t.Helper()
				if c == nil {
					return
				}
				if err := c.MoveTopicPartition(topic, 0, (c.LeaderFor(topic, 0)+1)%3); err != nil {
					t.Fatal(err)
				}
			}
			appendN := func(k int) {
				t.Helper()
				var recs []*intentlog.Record
				for range k {
					recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: []byte("v")})
				}
				if err := l.Append(ctx, topic, recs); err != nil {
					t.Fatal(err)
				}
			}
			p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(topicName("txn")), kgo.DefaultProduceTopic(topic))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			txn := func(commit kgo.TransactionEndTry) {
				t.Helper()
				if err := p.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("t")}, &kgo.Record{Value: []byte("t")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if err := p.EndTransaction(ctx, commit); err != nil {
					t.Fatal(err)
				}
			}
			appendN(2)
			move()
			txn(kgo.TryCommit) // two records and a marker
			move()
			move()
			appendN(1)
			txn(kgo.TryAbort)
			move()
			appendN(2)
			_, end, err := l.Bounds(ctx, topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 0, Epoch: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			for rd.Position() < end {
				if _, err := rd.Next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			offsets := map[int32]int64{}
			for o := int64(0); o <= end+1; o++ {
				offsets[0] = o
				got, err := l.EpochsBefore(ctx, topic, offsets)
				if err != nil {
					t.Fatalf("EpochsBefore(%d): %v", o, err)
				}
				want := rd.EpochBefore(o)
				if o > end {
					want = -1
				}
				if got[0].Offset != o || got[0].Epoch != want || (o > 0 && o <= end && want < 0) {
					t.Errorf("EpochsBefore(%d) = %+v; want epoch %d (the reader's EpochBefore)", o, got[0], want)
				}
			}
		})
	}
}

// TestEpochsBeforeRecordRemoved: the record before an offset removed
// between the bounds' listing and its fetch (retention; the fetch answered
// OFFSET_OUT_OF_RANGE) has no epoch to read: -1, not an error.
func TestEpochsBeforeRecordRemoved(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "epochsremoved", 8)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return fetchAnswer(req, kerr.OffsetOutOfRange.Code), nil, true
	})
	got, err := l.EpochsBefore(ctx, topic, map[int32]int64{0: 5})
	if err != nil || got[0] != (intentlog.EpochOffset{Offset: 5, Epoch: -1}) {
		t.Fatalf("EpochsBefore(5) of a record removed = %+v, %v; want epoch -1", got, err)
	}
}
