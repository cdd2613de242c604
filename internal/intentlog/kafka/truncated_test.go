package kafka

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
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
		r := req.(*kmsg.FetchRequest)
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.FencedLeaderEpoch.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
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
