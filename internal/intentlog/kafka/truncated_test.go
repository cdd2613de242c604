package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestReadTruncatedBelowPosition: after an unclean leader election the new
// leader's log diverges below what a reader had read. The client finds it
// as KIP-320 says (the fetch is fenced, OffsetForLeaderEpoch of the epoch
// of the last record read ends below the position) and reports
// kgo.ErrDataLoss; the reader passed it on unmapped, so the resolver could
// not tell it from any read error and restarted from its committed
// offset, past the new records that took the lost offsets. It is now a
// *intentlog.Truncation (ErrTruncated) saying where the log diverges.
func TestReadTruncatedBelowPosition(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("truncated")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i := range 5 {
		recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for rd.Position() < 5 {
		if _, err := rd.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The leader changed under the reader: its next fetch is fenced, and
	// the new leader's log ends the reader's epoch at offset 2.
	var fenced, asked atomic.Bool
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if fenced.Swap(true) {
			return nil, nil, false
		}
		return fetchAnswer(req, kerr.FencedLeaderEpoch.Code), nil, true
	})
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		asked.Store(true)
		r := req.(*kmsg.OffsetForLeaderEpochRequest)
		resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, rp.LeaderEpoch, 2
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	got, err := rd.Next(ctx)
	var tr *intentlog.Truncation
	if !errors.Is(err, intentlog.ErrTruncated) || !errors.As(err, &tr) {
		t.Fatalf("Next after the log diverged at 2 below position 5 = %d records, %v (epoch validated: %v); want ErrTruncated",
			len(got), err, asked.Load())
	}
	if tr.From != 2 || tr.Read != 5 {
		t.Fatalf("truncation %+v; want from 2, read 5", tr)
	}
	t.Logf("%v", err)
}

// epochEnds answers OffsetForLeaderEpoch as the new leader of a diverged
// log does: the epoch asked about ends at end, under epoch newEpoch. asked
// counts the questions.
func epochEnds(c *kfake.Cluster, end int64, newEpoch int32, asked *atomic.Int32) {
	epochAnswers(c, asked, func(_ kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
		sp.LeaderEpoch, sp.EndOffset = newEpoch, end
	})
}

// TestStartAtCommittedEpoch: a group commits offset 5 after reading
// records 0-4; while no reader runs (the resolver restarted, the
// partition moved to another process) an unclean leader election cuts
// the log at 2 and new records take offsets 2 on. A reader started at
// the committed offset alone had nothing to validate: it started at 5 and
// silently passed the new records at 2-4 (acknowledged writes without
// events). The offset is now committed with the leader epoch of the last
// record read (KIP-320), read back with it, and a reader started at both
// has the client validate them: the divergence is a *Truncation from its
// first Next. A log that did not diverge reads on (on a real broker too:
// its epochs validate).
func TestStartAtCommittedEpoch(t *testing.T) {
	for _, tc := range []struct {
		name           string
		real, diverged bool
	}{{"not diverged", false, false}, {"diverged at 2", false, true}, {"Kafka, not diverged", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := topicName("startepoch")
			if tc.real {
				brokers := realBrokers(t)
				newJanitor(t, brokers).add(topic)
				runStartAtCommittedEpoch(t, openLog(t, brokers, nil), nil, topic, topicName("startepoch-group"), tc.diverged)
				return
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			runStartAtCommittedEpoch(t, openLog(t, c.ListenAddrs(), nil), c, topic, "g", tc.diverged)
		})
	}
}

// runStartAtCommittedEpoch is TestStartAtCommittedEpoch on l (c: its kfake
// cluster, which plays the divergence).
func runStartAtCommittedEpoch(t *testing.T, l *Log, c *kfake.Cluster, topic, group string, diverged bool) {
	ctx := testCtx(t, time.Minute)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	appendN := func(n int, prefix string) {
		t.Helper()
		var recs []*intentlog.Record
		for i := range n {
			recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "%s%d", prefix, i)})
		}
		if err := l.Append(ctx, topic, recs); err != nil {
			t.Fatal(err)
		}
	}
	appendN(5, "old")
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 0, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	for rd.Position() < 5 {
		if _, err := rd.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	epoch := rd.EpochBefore(5)
	if epoch < 0 || rd.EpochBefore(0) != -1 {
		t.Fatalf("EpochBefore(5) = %d, EpochBefore(0) = %d; want the records' epoch, and -1 below the start", epoch, rd.EpochBefore(0))
	}
	rd.Close()
	if err := l.CommitEpochs(ctx, group, topic, map[int32]intentlog.EpochOffset{0: {Offset: 5, Epoch: epoch}}); err != nil {
		t.Fatal(err)
	}
	committed, err := l.CommittedEpochs(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := committed[0]; got != (intentlog.EpochOffset{Offset: 5, Epoch: epoch}) {
		t.Fatalf("committed %+v; want offset 5 epoch %d", got, epoch)
	}
	var asked atomic.Int32
	if diverged {
		epochEnds(c, 2, epoch+1, &asked) // the new leader's log leaves the epoch at 2
	}
	appendN(3, "new")
	rd, err = l.NewEpochReader(topic, 0, committed[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.EpochBefore(5) != epoch {
		t.Fatalf("EpochBefore(5) of a reader started at epoch %d = %d", epoch, rd.EpochBefore(5))
	}
	got, err := rd.Next(ctx)
	if !diverged {
		if err != nil || len(got) == 0 || got[0].Offset != 5 {
			t.Fatalf("Next at the committed position of a log that did not diverge = %v, %v; want the records from 5", got, err)
		}
		return
	}
	var tr *intentlog.Truncation
	if !errors.As(err, &tr) || !errors.Is(err, intentlog.ErrTruncated) {
		t.Fatalf("Next at offset 5 of epoch %d, the epoch ending at 2 = %d records (from %v), %v (epoch asked %d times); want a truncation",
			epoch, len(got), got, err, asked.Load())
	}
	if tr.From != 2 || tr.Read != 5 || tr.Epoch != epoch+1 {
		t.Fatalf("truncation %+v; want from 2 (epoch %d), read 5", tr, epoch+1)
	}
	t.Logf("%v", err)
}

// TestEpochBeforeAcrossLeaderChanges: a reader tells, for an offset the
// resolver commits (its lowest unresolved intent, often well behind what
// the reader read), the leader epoch of the record before it as read:
// the epoch that record was written under, not the last one seen, so
// that a commit behind a leader change carries the epoch the log
// validates at that offset. Records read under epochs 3, 4 and 6 (a
// marker and a record without an epoch among them); the start offset's
// epoch when the reader was started with one (0 included); -1 before
// what the reader knows, and once more leader changes were read than it
// keeps, for the offsets before those it kept.
func TestEpochBeforeAcrossLeaderChanges(t *testing.T) {
	t.Parallel()
	l := openLog(t, fakeBrokers(t), nil)
	type rec struct {
		offset int64
		epoch  int32
	}
	for _, tc := range []struct {
		name  string
		start intentlog.EpochOffset
		read  []rec
		want  map[int64]int32 // EpochBefore(offset)
	}{
		{"started with an epoch, nothing read", intentlog.EpochOffset{Offset: 10, Epoch: 3}, nil,
			map[int64]int32{9: -1, 10: 3, 11: 3}},
		{"started at epoch 0", intentlog.EpochOffset{Offset: 10, Epoch: 0}, nil,
			map[int64]int32{9: -1, 10: 0}},
		{"started at offset 0 with an epoch", intentlog.EpochOffset{Offset: 0, Epoch: 2}, []rec{{0, 2}, {1, 5}},
			map[int64]int32{0: 2, 1: 2, 2: 5}},
		{"leader changes read", intentlog.EpochOffset{Offset: 10, Epoch: 3},
			[]rec{{10, 3}, {11, 3}, {12, 4}, {13, 4}, {14, -1}, {15, 6}},
			map[int64]int32{9: -1, 10: 3, 11: 3, 12: 3, 13: 4, 14: 4, 15: 4, 16: 6, 100: 6}},
		{"started without an epoch", intentlog.EpochOffset{Offset: 10, Epoch: -1}, []rec{{10, 3}, {11, 3}, {12, 4}},
			map[int64]int32{10: -1, 11: 3, 12: 3, 13: 4}},
		{"more leader changes than kept", intentlog.EpochOffset{Offset: 0, Epoch: -1}, func() []rec {
			var rs []rec
			for i := range int64(2 * maxEpochMarks) {
				rs = append(rs, rec{i, int32(i)})
			}
			return rs
		}(), map[int64]int32{2 * maxEpochMarks: 2*maxEpochMarks - 1, maxEpochMarks + 1: maxEpochMarks, maxEpochMarks: -1, 1: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := l.NewEpochReader("t", 0, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			r := rd.(*reader)
			// The records as a fetch returns them, one fetch each.
			for _, rc := range tc.read {
				kr := &kgo.Record{Topic: r.topic, Partition: 0, Offset: rc.offset, LeaderEpoch: rc.epoch}
				if _, err, _ := r.convert(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: r.topic,
					Partitions: []kgo.FetchPartition{{Partition: 0, Records: []*kgo.Record{kr}}}}}}}); err != nil {
					t.Fatal(err)
				}
			}
			for offset, want := range tc.want {
				if got := rd.EpochBefore(offset); got != want {
					t.Errorf("EpochBefore(%d) = %d, want %d", offset, got, want)
				}
			}
		})
	}
}

// TestTruncationBeforeRecordsOfItsPoll: kgo.ErrDataLoss is informational
// (the client resets to where the log diverges and fetches on from there),
// so a poll can carry it together with records the client fetched after
// the reset: records of the diverged log at and past the reader's
// position. The reader returned those first and the truncation next, so
// a group member started at a committed offset validated by its epoch
// was sometimes sent the new events past it before it ended (a rare
// failure of group.TestGroupStartDivergedBelowCommitted: "read [5 6 7]").
// The truncation now comes first; nothing of its poll is returned and the
// position stays.
func TestTruncationBeforeRecordsOfItsPoll(t *testing.T) {
	t.Parallel()
	l := openLog(t, fakeBrokers(t), nil)
	rd, err := l.NewEpochReader("t", 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r := rd.(*reader)
	loss := &kgo.ErrDataLoss{Topic: r.topic, Partition: 0, ConsumedTo: 5, ConsumedToEpoch: 0, ResetTo: 2, ResetToEpoch: 1}
	var recs []*kgo.Record
	for o := int64(2); o < 8; o++ {
		recs = append(recs, &kgo.Record{Topic: r.topic, Partition: 0, Offset: o, LeaderEpoch: 1, Value: []byte("new")})
	}
	for _, tc := range []struct {
		name string
		fs   kgo.Fetches
	}{
		{"error first", kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: r.topic, Partitions: []kgo.FetchPartition{
			{Partition: 0, Err: loss}, {Partition: 0, Records: recs}}}}}}},
		{"records first", kgo.Fetches{
			{Topics: []kgo.FetchTopic{{Topic: r.topic, Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs}}}}},
			{Topics: []kgo.FetchTopic{{Topic: r.topic, Partitions: []kgo.FetchPartition{{Partition: 0, Err: loss}}}}}}},
	} {
		got, err, _ := r.convert(tc.fs)
		var tr *intentlog.Truncation
		if len(got) > 0 || !errors.As(err, &tr) || tr.From != 2 || tr.Read != 5 {
			t.Fatalf("%s: a poll with the data loss and records 2-7 = %d records, %v; want the truncation from 2 alone", tc.name, len(got), err)
		}
		if r.Position() != 5 || rd.EpochBefore(5) != 0 {
			t.Fatalf("%s: position %d, epoch before 5 %d; want 5 and 0 unchanged", tc.name, r.Position(), rd.EpochBefore(5))
		}
	}
}

// TestTruncationIsFinal: after a truncation the client has reset to where
// the log diverges and fetched on (kgo.ErrDataLoss is informational),
// while the reader's position stayed where it was: a Next after the
// truncation returned the diverged log's records from the old position
// on (the new records below it silently passed) and moved the position
// as if nothing had happened. Every Next after a truncation now returns
// it again: the reader is done.
func TestTruncationIsFinal(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "truncfinal", 8)
	var asked atomic.Int32
	epochEnds(c, 2, 1, &asked) // the epoch the reader starts at ends at 2
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for i := range 3 {
		nctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		got, err := rd.Next(nctx)
		cancel()
		var tr *intentlog.Truncation
		if len(got) > 0 || !errors.As(err, &tr) || tr.From != 2 {
			offs := make([]int64, 0, len(got))
			for _, r := range got {
				offs = append(offs, r.Offset)
			}
			t.Fatalf("Next #%d after the log diverged at 2 below the start 5 = records %v, %v (position %d); want the truncation from 2 again",
				i+1, offs, err, rd.Position())
		}
		if rd.Position() != 5 {
			t.Fatalf("Next #%d: position %d; want 5", i+1, rd.Position())
		}
	}
}

// oneBrokerRecords returns a one-broker kfake cluster, a log on it, the
// test's context and a topic of one partition (named after name) holding
// n records, at offsets 0 to n-1.
func oneBrokerRecords(t *testing.T, name string, n int) (*kfake.Cluster, *Log, context.Context, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName(name)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i := range n {
		recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	return c, l, ctx, topic
}

// fetchAnswer answers a fetch request with code for each of its
// partitions (kfake control functions).
func fetchAnswer(req kmsg.Request, code int16) kmsg.Response {
	r := req.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.Version = r.Version
	for _, rt := range r.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// TestTruncationFromTheStart: the epoch a reader starts at ends at offset
// 0 on the leader (the log diverged from its very start): that is a
// known end, a truncation from 0 for the client's validation to report,
// not an epoch the leader has no record of (UNDEFINED_EPOCH_OFFSET, -1).
func TestTruncationFromTheStart(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "truncstart", 8)
	var asked atomic.Int32
	epochEnds(c, 0, 1, &asked)
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := rd.Next(ctx)
	var tr *intentlog.Truncation
	if len(got) > 0 || !errors.As(err, &tr) || tr.From != 0 || errors.Is(err, intentlog.ErrEpochUnknown) {
		t.Fatalf("Next after the log diverged at 0 below the start 5 = %d records, %v; want a truncation from 0, the epoch known", len(got), err)
	}
}
