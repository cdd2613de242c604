package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka/kafkatest"
)

// TestEpochsHealthyNoTruncation: a partition whose records were written
// across several leader epochs (leader changes and partition moves with
// writes in between, some without a write), on a cluster that lost
// nothing. Every offset a resolver can commit, committed with the epoch
// its reader gives for it (EpochBefore) and read back, starts a reader
// that reads on from that offset: none reports a truncation (a false
// alarm would lower the commit and restart the partition for ever). The
// same holds for a chain of restarts (each reader started at the
// previous one's commit with its epoch) and for a leader change after the
// last commit.
func TestEpochsHealthyNoTruncation(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var asked atomic.Int32 // OffsetForLeaderEpoch: the epochs are validated
	epochs := kafkatest.NewEpochCache()
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		asked.Add(1)
		return epochs.Response(req.(*kmsg.OffsetForLeaderEpochRequest)), nil, true // as Kafka answers (kafkatest.EpochCache)
	})
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, 2*time.Minute)
	topic := topicName("epochs")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	appendN := func(k int) {
		t.Helper()
		var recs []*intentlog.Record
		for range k {
			recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", n)})
			n++
		}
		if err := l.Append(ctx, topic, recs); err != nil {
			t.Fatal(err)
		}
		epochs.Appended(k)
	}
	move := func() {
		t.Helper()
		if err := c.MoveTopicPartition(topic, 0, (c.LeaderFor(topic, 0)+1)%3); err != nil {
			t.Fatal(err)
		}
		epochs.Moved()
	}
	// Epoch 0: 3 records; 1: none; 2: 2; 3, 4: none; 5: 4 (one at a time).
	appendN(3)
	move()
	move()
	appendN(2)
	move()
	move()
	move()
	for range 4 {
		appendN(1)
	}
	end := int64(n)

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
	want := map[int64]int32{0: -1, 1: 0, 3: 0, 4: 2, 5: 2, 6: 5, end: 5}
	for o, e := range want {
		if got := rd.EpochBefore(o); got != e {
			t.Errorf("EpochBefore(%d) = %d; want %d (the epoch of the record before it)", o, got, e)
		}
	}
	startAt := func(name string, at intentlog.EpochOffset) (intentlog.EpochReader, []intentlog.Record) {
		t.Helper()
		group := fmt.Sprintf("g-%s-%d", name, at.Offset)
		if err := l.CommitEpochs(ctx, group, topic, map[int32]intentlog.EpochOffset{0: at}); err != nil {
			t.Fatal(err)
		}
		committed, err := l.CommittedEpochs(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		if committed[0] != at {
			t.Fatalf("%s: committed %+v, read back %+v", name, at, committed[0])
		}
		r, err := l.NewEpochReader(topic, 0, committed[0])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := r.Next(nctx)
		if err != nil {
			t.Fatalf("%s: a reader started at %+v on a log that lost nothing: %v", name, at, err)
		}
		if len(got) == 0 || got[0].Offset != at.Offset {
			t.Fatalf("%s: a reader started at %+v read %v; want the record at %d first", name, at, got, at.Offset)
		}
		return r, got
	}
	for o := range end {
		startAt("restart", intentlog.EpochOffset{Offset: o, Epoch: rd.EpochBefore(o)})
	}
	// A chain of restarts, each at the commit of the one before, after a
	// leader change each time.
	at := intentlog.EpochOffset{Offset: 1, Epoch: rd.EpochBefore(1)}
	for at.Offset < end {
		move()
		r, got := startAt("chain", at)
		next := got[len(got)-1].Offset + 1
		at = intentlog.EpochOffset{Offset: min(next, at.Offset+2), Epoch: r.EpochBefore(min(next, at.Offset+2))}
		if want := rd.EpochBefore(at.Offset); at.Epoch != want {
			t.Fatalf("a reader started at an epoch gives epoch %d before %d; the first reader %d", at.Epoch, at.Offset, want)
		}
	}
	// The commit at the end, then a leader change and a new record.
	move()
	appendN(1)
	startAt("end", intentlog.EpochOffset{Offset: end, Epoch: rd.EpochBefore(end)})
	if asked.Load() < int32(end) {
		t.Fatalf("OffsetForLeaderEpoch asked %d times for %d readers started at an epoch: not validated", asked.Load(), end)
	}
}
