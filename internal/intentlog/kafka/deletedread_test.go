package kafka

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestReadTopicDeletedLate: a topic deleted by another process, its
// partition count still cached here, is read. With an epoch, the check
// of the start reads metadata that still lists the topic (the client's
// copy, kept MetadataMinAge, or a broker that has not applied the
// deletion) and the replica, not removed yet, answers
// OffsetForLeaderEpoch; without an epoch there is no check. The reader's
// new client then never learns the topic: its metadata answers
// UNKNOWN_TOPIC_OR_PARTITION, retriable, which franz-go strips, and
// Next waited until its context ended (a resolver or subscriber of a
// dropped table's topic hung; seen once on the real broker under load,
// TestEpochCheckTopicDeletedRealBroker). The topic is reported unknown
// within a few metadata refreshes, its partition count forgotten.
func TestReadTopicDeletedLate(t *testing.T) {
	t.Parallel()
	for _, epoch := range []int32{0, -1} {
		t.Run(map[bool]string{true: "epoch", false: "noepoch"}[epoch >= 0], func(t *testing.T) {
			t.Parallel()
			c, l, ctx, topic := oneBrokerRecords(t, "readdeletedlate", 8)
			md, err := l.adm.Metadata(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			id := md.Topics[topic].ID
			if _, _, err := l.Bounds(ctx, topic, 0); err != nil { // the partition count cached
				t.Fatal(err)
			}
			if err := openLog(t, c.ListenAddrs(), nil).DeleteTopic(ctx, topic); err != nil {
				t.Fatal(err)
			}
			host, port := splitHostPort(t, c.ListenAddrs()[0])
			var stale atomic.Int32 // metadata answers that still list the topic
			c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				r := req.(*kmsg.MetadataRequest)
				named := false
				for _, rt := range r.Topics {
					named = named || rt.Topic != nil && *rt.Topic == topic
				}
				// The check's, should the copy Bounds left in the
				// client's cache have aged (kadm's asks the cluster's
				// authorized operations; neither the producer's
				// metadata nor the reader client's does), the first
				// one only.
				if !named || !r.IncludeClusterAuthorizedOperations || epoch < 0 || stale.Add(1) > 1 {
					return nil, nil, false
				}
				resp := r.ResponseKind().(*kmsg.MetadataResponse)
				resp.Version = r.Version
				b := kmsg.NewMetadataResponseBroker()
				b.NodeID, b.Host, b.Port = 0, host, port
				resp.Brokers = append(resp.Brokers, b)
				st := kmsg.NewMetadataResponseTopic()
				st.Topic, st.TopicID = kmsg.StringPtr(topic), id
				sp := kmsg.NewMetadataResponseTopicPartition()
				sp.Partition, sp.Leader, sp.Replicas, sp.ISR = 0, 0, []int32{0}, []int32{0}
				st.Partitions = append(st.Partitions, sp)
				resp.Topics = append(resp.Topics, st)
				return resp, nil, true
			})
			var asked atomic.Int32
			epochAnswers(c, &asked, func(_ kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
				sp.LeaderEpoch, sp.EndOffset = 0, 8 // the replica not removed yet
			})
			rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 1, Epoch: epoch})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			nctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			start := time.Now()
			got, err := rd.Next(nctx)
			if took := time.Since(start); !errors.Is(err, intentlog.ErrUnknownTopic) || took > 5*time.Second {
				t.Fatalf("Next of a deleted topic at offset 1 (epoch %d), the metadata listing it once more = %d records, %v after %s "+
					"(stale metadata answered %d times, epoch asked %d times); want the topic unknown within a few metadata refreshes",
					epoch, len(got), err, took, stale.Load(), asked.Load())
			}
			if _, err := l.partitionCount(ctx, topic); !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("the partition count after the read found the topic unknown: %v; want it forgotten (unknown)", err)
			}
		})
	}
}

// TestReadLeaderlessWaits: a reader of a partition whose leader moves
// for a while (a broker restarting: fetches answer
// NOT_LEADER_OR_FOLLOWER, retriable) waits, as before its client kept
// the retriable errors to see a topic deleted: no error but its
// context's, and it reads once the partition answers again.
func TestReadLeaderlessWaits(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "readleaderless", 8)
	var leaderless atomic.Bool
	var fetches atomic.Int32
	leaderless.Store(true)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !leaderless.Load() {
			return nil, nil, false
		}
		fetches.Add(1)
		return fetchAnswer(req, kerr.NotLeaderForPartition.Code), nil, true
	})
	rd, err := l.NewReader(topic, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if got, err := rd.Next(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next of a partition without a leader for 2 s = %d records, %v (fetched %d times); want it waiting until its context ends",
			len(got), err, fetches.Load())
	}
	if fetches.Load() < 2 {
		t.Fatalf("fetched %d times while the partition had no leader; want the client asking again", fetches.Load())
	}
	leaderless.Store(false)
	if got, err := rd.Next(ctx); err != nil || len(got) == 0 || got[0].Offset != 1 {
		t.Fatalf("Next once the partition has a leader again = %d records, %v; want the records from 1", len(got), err)
	}
}

// TestReadTopicCreatedAgain: a reader whose topic is deleted and created
// again elsewhere while it reads (its client keeps the old topic id:
// fetches answer UNKNOWN_TOPIC_ID, the metadata lists the topic) fails
// with ErrUnknownTopic, as it did when franz-go reported the sixth of
// those, and does not read the new topic's records.
func TestReadTopicCreatedAgain(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "readcreatedagain", 2)
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if got, err := rd.Next(ctx); err != nil || len(got) == 0 {
		t.Fatalf("Next = %d records, %v", len(got), err)
	}
	other := openLog(t, c.ListenAddrs(), nil)
	if err := other.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := other.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for range 4 {
		recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: []byte("new")})
	}
	if err := other.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	for {
		got, err := rd.Next(nctx)
		if err != nil {
			if !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("Next after the topic was created again = %v after %s; want the topic unknown", err, time.Since(start))
			}
			break
		}
		for _, r := range got {
			if string(r.Value) == "new" {
				t.Fatalf("Next after the topic was created again read the new topic's record at %d", r.Offset)
			}
		}
	}
}

// TestReadSkipsTransactionMarkers: a reader returns the records of
// committed transactions alone, never their markers (control records)
// nor an aborted transaction's records, and its position moves past the
// markers to the end.
func TestReadSkipsTransactionMarkers(t *testing.T) {
	t.Parallel()
	brokers := fakeBrokers(t)
	l := openLog(t, brokers, nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("markers")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(topicName("txn")), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, txn := range []struct {
		vals []string
		end  kgo.TransactionEndTry
	}{{[]string{"a", "b"}, kgo.TryCommit}, {[]string{"aborted"}, kgo.TryAbort}, {[]string{"c"}, kgo.TryCommit}} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range txn.vals {
			if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, txn.end); err != nil {
			t.Fatal(err)
		}
	}
	_, end, err := l.Bounds(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) || rd.Position() != end {
		t.Fatalf("read %q, position %d; want [a b c], the end %d", got, rd.Position(), end)
	}
}

// TestTopicGoneConfirms: a reader's client saying the topic is unknown is
// confirmed with the metadata: UNKNOWN_TOPIC_ID while the metadata lists
// the topic fails the reader at the unknownIDPolls-th poll in a row, not
// before; a topic the metadata does not know yet, but does a moment later
// (created elsewhere a moment before), is waited for.
func TestTopicGoneConfirms(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "topicgone", 1)
	r := &reader{l: l, topic: topic}
	for i := 1; i <= unknownIDPolls; i++ {
		err := r.topicGone(ctx, kerr.UnknownTopicID)
		if (err != nil) != (i == unknownIDPolls) || err != nil && !errors.Is(err, intentlog.ErrUnknownTopic) {
			t.Fatalf("poll %d saying UNKNOWN_TOPIC_ID of a listed topic: %v; want the topic unknown at poll %d only", i, err, unknownIDPolls)
		}
	}
	// A topic created by another process (none of its metadata cached).
	fresh := topicName("topicgone-fresh")
	if err := openLog(t, c.ListenAddrs(), nil).CreateTopic(ctx, fresh, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var unknown atomic.Int32
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if len(r.Topics) != 1 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != fresh || unknown.Add(1) > 1 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = r.Version
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.ErrorCode = kmsg.StringPtr(fresh), kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	r = &reader{l: l, topic: fresh}
	if err := r.topicGone(ctx, kerr.UnknownTopicOrPartition); err != nil || unknown.Load() < 2 {
		t.Fatalf("topic unknown to the metadata once, then listed: %v after %d metadata answers; want it waited for", err, unknown.Load())
	}
}
