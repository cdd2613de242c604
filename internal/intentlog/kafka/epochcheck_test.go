package kafka

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// epochAnswers has the cluster answer OffsetForLeaderEpoch with answer
// (an error code, or the leader epoch and end offset), counting the
// questions in asked.
func epochAnswers(c *kfake.Cluster, asked *atomic.Int32, answer func(rp kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition)) {
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		asked.Add(1)
		r := req.(*kmsg.OffsetForLeaderEpochRequest)
		resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition = rp.Partition
				answer(rp, &sp)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// TestEpochCheckStaleAfterNoLeader: the check of a reader's committed
// epoch (3) reads the metadata while a leader is elected: no leader (the
// answer served again from the client's cache, MetadataMinAge), then the
// answer of a broker behind (leader epoch 0, older than the committed
// one), then the new leader at epoch 3. The broker named by the stale
// metadata still thinks it leads at epoch 0 and answers
// UNDEFINED_EPOCH_OFFSET about epoch 3. Metadata older than the committed
// epoch is read again (staleMetadataTries, staleMetadataWait apart)
// before it is used: the retries of the errors before it used that
// budget up (it counted every ask), the stale broker's UNDEFINED was
// believed, and the reader failed for good (ErrEpochUnknown: a group
// member ends until `wail group reset`, the resolver reads its whole log
// again).
func TestEpochCheckStaleAfterNoLeader(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "epochstaleafter", 8)
	md, err := l.adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics[topic].ID
	host, port := splitHostPort(t, c.ListenAddrs()[0])
	var reads, asked atomic.Int32
	var armed atomic.Bool
	armed.Store(true)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		named := false
		for _, rt := range r.Topics {
			named = named || rt.Topic != nil && *rt.Topic == topic
		}
		if !named || !armed.Load() {
			return nil, nil, false
		}
		n := reads.Add(1)
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = r.Version
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, port
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = 0
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.TopicID = kmsg.StringPtr(topic), id
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition, sp.Leader, sp.Replicas, sp.ISR = 0, 0, []int32{0}, []int32{0}
		switch {
		case n <= 2:
			sp.ErrorCode, sp.Leader = kerr.LeaderNotAvailable.Code, -1
		case n == 3:
			sp.LeaderEpoch = 0 // a broker behind
		default:
			sp.LeaderEpoch = 3
		}
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	epochAnswers(c, &asked, func(rp kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
		if rp.CurrentLeaderEpoch == 3 { // the leader
			sp.LeaderEpoch, sp.EndOffset = 3, 8
			armed.Store(false)
			return
		}
		sp.LeaderEpoch, sp.EndOffset = -1, -1 // the stale broker: UNDEFINED_EPOCH_OFFSET
	})
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := rd.Next(ctx)
	if err != nil || len(got) == 0 || got[0].Offset != 5 {
		t.Fatalf("Next at offset 5 of epoch 3, the metadata without a leader, then stale once = %d records, %v "+
			"(metadata read %d times, epoch asked %d times); want the records from 5", len(got), err, reads.Load(), asked.Load())
	}
}

func splitHostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, int32(p)
}

// notLeaderForever answers every question about an epoch NOT_LEADER.
func notLeaderForever(c *kfake.Cluster, asked *atomic.Int32) {
	epochAnswers(c, asked, func(_ kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
	})
}

// TestEpochCheckEndsWithContext: a check asking again through a leader
// election ends when the caller's context does (a member leaving, a
// shutdown), at once, with the context's error: not after the request
// timeout, not as an unavailable partition.
func TestEpochCheckEndsWithContext(t *testing.T) {
	t.Parallel()
	for _, cancelled := range []bool{true, false} {
		t.Run(map[bool]string{true: "cancelled", false: "deadline"}[cancelled], func(t *testing.T) {
			t.Parallel()
			c, l, ctx, topic := oneBrokerRecords(t, "epochctx", 8)
			var asked atomic.Int32
			notLeaderForever(c, &asked)
			rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var nctx context.Context
			var cancel context.CancelFunc
			want := context.Canceled
			if cancelled {
				nctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(300*time.Millisecond, cancel)
			} else {
				nctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				want = context.DeadlineExceeded
			}
			defer cancel()
			start := time.Now()
			got, err := rd.Next(nctx)
			if took := time.Since(start); !errors.Is(err, want) || errors.Is(err, ErrPartitionUnavailable) || took > 2*time.Second {
				t.Fatalf("Next, its context ended during the epoch check = %d records, %v after %s (asked %d times); "+
					"want %v at once, not the partition unavailable", len(got), err, took, asked.Load(), want)
			}
			if asked.Load() == 0 {
				t.Fatal("the epoch was never asked")
			}
		})
	}
}

// TestEpochCheckLogClosed: the log closed while a reader's check asks
// again through a leader election: its client closed, the check's
// questions fail at once (kgo.ErrClientClosed, no Kafka error). The
// reader's Next ends with ErrClosed, as when the log closes while it
// fetches, not after the request timeout as an unavailable partition.
func TestEpochCheckLogClosed(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "epochclosed", 8)
	l.opts.RequestTimeout = 10 * time.Second
	var asked atomic.Int32
	notLeaderForever(c, &asked)
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	time.AfterFunc(300*time.Millisecond, func() { _ = l.Close() })
	start := time.Now()
	got, err := rd.Next(ctx)
	if took := time.Since(start); !errors.Is(err, intentlog.ErrClosed) || took > 3*time.Second {
		t.Fatalf("Next, the log closed during the epoch check = %d records, %v after %s (asked %d times); want ErrClosed at once",
			len(got), err, took, asked.Load())
	}
}

// TestEpochCheckTopicDeleted: the topic deleted (by another process: this
// one still has its partition count) before a reader with an epoch
// starts. Its check says the topic is unknown, at once, as a Bounds or
// a reader of a process that never saw the topic does, and forgets the
// count: not after the request timeout as a partition without a leader,
// for every start. (A reader without an epoch, or one whose check still
// saw the topic, learns it from its fetch: TestReadTopicDeletedLate.)
func TestEpochCheckTopicDeleted(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "epochdeleted", 8)
	l.opts.RequestTimeout = 5 * time.Second
	if _, _, err := l.Bounds(ctx, topic, 0); err != nil { // the partition count cached
		t.Fatal(err)
	}
	if err := openLog(t, c.ListenAddrs(), nil).DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := rd.Next(ctx)
		rd.Close()
		if took := time.Since(start); !errors.Is(err, intentlog.ErrUnknownTopic) || errors.Is(err, ErrPartitionUnavailable) || took > 2*time.Second {
			t.Fatalf("start %d: Next of a deleted topic at offset 5 of epoch 0 = %d records, %v after %s; want the topic unknown at once",
				i, len(got), err, took)
		}
	}
}

// TestEpochCheckTopicDeletedRealBroker: TestEpochCheckTopicDeleted on the
// test cluster (its metadata for a deleted topic, as Kafka answers).
func TestEpochCheckTopicDeletedRealBroker(t *testing.T) {
	t.Parallel()
	brokers := realBrokers(t)
	l := openLog(t, brokers, func(o *Options) { o.RequestTimeout = 5 * time.Second })
	ctx := testCtx(t, time.Minute)
	topic := topicName("epochdeleted-real")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k"), Value: []byte("w")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Bounds(ctx, topic, 0); err != nil { // the partition count cached
		t.Fatal(err)
	}
	if err := openLog(t, brokers, nil).DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 1, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	start := time.Now()
	got, err := rd.Next(ctx)
	if took := time.Since(start); !errors.Is(err, intentlog.ErrUnknownTopic) || took > 2*time.Second {
		t.Fatalf("Next of a deleted topic at offset 1 of epoch 0 = %d records, %v after %s; want the topic unknown at once", len(got), err, took)
	}
}
