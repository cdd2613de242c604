package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// failProduce makes the cluster answer every Produce with code on every
// partition while on is set.
func failProduce(c *kfake.Cluster, code int16, on *atomic.Bool) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !on.Load() {
			return nil, nil, false
		}
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// TestTransactProduceBounded: brokers that keep answering a retriable
// produce error (NOT_ENOUGH_REPLICAS: fewer in-sync replicas than
// min.insync.replicas) made a transaction's produce retry until its
// context ended, which for the resolver's pump is never: every partition
// of the shard stalled with nothing said; with some errors
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND) not even the context ended it.
// Transact now aborts (IsAborted: to be tried again) once the records are
// not acknowledged within half the transaction timeout, saying so, and
// the member goes on once the brokers take records again; when the client
// keeps a batch it may have written in flight, the error says the member
// must be joined again (not IsAborted: its producer's retries must not
// land in a later transaction).
func TestTransactProduceBounded(t *testing.T) {
	for _, tc := range []struct {
		code     int16
		inFlight bool
	}{
		{kerr.NotEnoughReplicas.Code, false},
		{kerr.KafkaStorageError.Code, false},
		{kerr.NotEnoughReplicasAfterAppend.Code, true},
	} {
		name := kerr.ErrorForCode(tc.code).(*kerr.Error).Message
		t.Run(name, func(t *testing.T) {
			c, l, ctx, in, out, m := fakeMember(t, "ner")

			var on atomic.Bool
			on.Store(true)
			failProduce(c, tc.code, &on)
			rec := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}}
			began := time.Now()
			// The caller's context would wait 20 s.
			tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := m.Transact(tctx, 0, rec, map[string]map[int32]int64{in: {0: 1}})
			cancel()
			if took := time.Since(began); IsAborted(err) == tc.inFlight || took > 10*time.Second ||
				!strings.Contains(err.Error(), "not acknowledged within 1s") ||
				tc.inFlight && !strings.Contains(err.Error(), "joined again") {
				t.Fatalf("transaction while the brokers answer %s: %v after %s; want it ended after half the transaction timeout, saying so", name, err, took)
			}
			if tc.inFlight {
				return // the member is closed and joined again
			}
			on.Store(false)
			if err := m.Transact(ctx, 0, rec, map[string]map[int32]int64{in: {0: 1}}); err != nil {
				t.Fatalf("transaction once the brokers take records again: %v", err)
			}
			if got, err := l.Committed(ctx, "g-"+in, in); err != nil || got[0] != 1 {
				t.Fatalf("committed %v, %v; want 1", got, err)
			}
			if vs := readValues(t, ctx, l, out, 0); len(vs) != 1 {
				t.Fatalf("%d records visible, want the committed transaction's one", len(vs))
			}
		})
	}
}

// TestUnackedReason: an Append cut off by its context (the producer
// retries NOT_ENOUGH_REPLICAS and a missing leader until then, and keeps
// no trace of them) looks in the metadata for why: a partition without a
// leader, or with fewer in-sync replicas than min.insync.replicas (capped
// at its replica count, as Kafka caps it). Its error said only "context
// deadline exceeded", and the proxy's answer had nothing to act on.
func TestUnackedReason(t *testing.T) {
	part := func(p, leader int32, replicas, isr []int32) kadm.PartitionDetail {
		return kadm.PartitionDetail{Topic: "t", Partition: p, Leader: leader, Replicas: replicas, ISR: isr}
	}
	td := kadm.TopicDetail{Topic: "t", Partitions: kadm.PartitionDetails{
		0: part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}),
		1: part(1, -1, []int32{1, 2, 3}, nil),
		2: part(2, 1, []int32{1, 2, 3}, []int32{1}),
		3: part(3, 1, []int32{1, 2, 3}, []int32{1, 2}),
		4: part(4, 1, []int32{1}, []int32{1}),
	}}
	for _, tc := range []struct {
		name   string
		parts  []int32
		minISR int
		want   error  // nil: no reason
		says   string // in the reason
	}{
		{name: "healthy", parts: []int32{0}, minISR: 2},
		{name: "no leader", parts: []int32{0, 1}, minISR: 2, want: kerr.LeaderNotAvailable, says: "partition 1 of t has no leader"},
		{name: "under min isr", parts: []int32{2}, minISR: 2, want: kerr.NotEnoughReplicas,
			says: "partition 2 of t has 1 in-sync replica(s) of 3, fewer than min.insync.replicas=2"},
		{name: "out of sync, at min isr", parts: []int32{3}, minISR: 2},
		{name: "min isr above the replicas", parts: []int32{4}, minISR: 2},
		{name: "unknown partition", parts: []int32{9}, minISR: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unackedReason(td, tc.parts, func() (int, error) { return tc.minISR, nil })
			if (tc.want == nil) != (err == nil) || tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says)) {
				t.Fatalf("reason %v; want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
	if err := unackedReason(td, []int32{2}, func() (int, error) { return 0, errors.New("denied") }); err != nil {
		t.Fatalf("reason %v when min.insync.replicas cannot be read; want none", err)
	}
	// min.insync.replicas is asked only for a partition out of sync.
	asked := 0
	if err := unackedReason(td, []int32{0, 4}, func() (int, error) { asked++; return 2, nil }); err != nil || asked != 0 {
		t.Fatalf("reason %v of partitions in sync, min.insync.replicas asked %d times; want none, not asked", err, asked)
	}
}

// TestAppendCutOffSaysWhy: an Append cut off by its context while the
// brokers keep refusing its records says why, as whyUnacked found (here
// found a moment before, by an earlier append: it is asked once per
// unackedTTL per topic).
func TestAppendCutOffSaysWhy(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("cut-off")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var on atomic.Bool
	on.Store(true)
	failProduce(c, kerr.NotEnoughReplicas.Code, &on)
	why := fmt.Errorf("partition 0 of %s has 1 in-sync replica(s) of 3, fewer than min.insync.replicas=2 (%w)", topic, kerr.NotEnoughReplicas)
	l.mu.Lock()
	l.unacked = map[string]*unackedDiag{topic: {at: time.Now(), err: why}}
	l.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, time.Second)
	err = l.Append(actx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, kerr.NotEnoughReplicas) || !strings.Contains(err.Error(), "min.insync.replicas=2") {
		t.Fatalf("append cut off: %v; want the deadline and why", err)
	}
	// Healthy metadata (the fake's replicas are all in sync): the
	// deadline alone, once the last answer is stale.
	l.mu.Lock()
	l.unacked[topic].at = time.Now().Add(-unackedTTL)
	l.mu.Unlock()
	actx, cancel = context.WithTimeout(ctx, time.Second)
	err = l.Append(actx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("append cut off, metadata healthy: %v; want the deadline alone", err)
	}
}

// TestTransactAfterInFlightRefused: once a transaction was aborted with
// records still in flight (the client retrying a batch it may have
// written), the member must be joined again before it transacts more: its
// shard's producers take turns, so the resolver's next transactions (other
// loops of the shard, the drain of every loop before the member closes)
// ran on the producer whose retry of the aborted batch could land in
// them, committed: an event of an aborted transaction published after
// later ones of its key. Every later Transact now fails (not IsAborted),
// and nothing of the aborted batch becomes visible.
func TestTransactAfterInFlightRefused(t *testing.T) {
	c, l, ctx, in, out, m := fakeMember(t, "inflight")

	var on atomic.Bool
	on.Store(true)
	failProduce(c, kerr.NotEnoughReplicasAfterAppend.Code, &on)
	err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("aborted")}}},
		map[string]map[int32]int64{in: {0: 1}})
	if err == nil || IsAborted(err) || !strings.Contains(err.Error(), "joined again") {
		t.Fatalf("transaction with a batch in flight: %v; want it ended, the member to be joined again", err)
	}
	on.Store(false)    // the brokers take records again: the batch's retry would land
	for i := range 2 { // both producers of the shard
		err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("later")}}},
			map[string]map[int32]int64{in: {0: int64(2 + i)}})
		if err == nil || IsAborted(err) || !strings.Contains(err.Error(), "joined again") {
			t.Fatalf("transaction %d after one ended with a batch in flight: %v; want it refused until the member is joined again", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // a retry of the batch, had it gone on, lands meanwhile
	if vs := readValues(t, ctx, l, out, 0); len(vs) != 0 {
		t.Fatalf("records %q visible after an aborted transaction and refused ones; want none", vs)
	}
	if got, err := l.Committed(ctx, "g-"+in, in); err != nil || got[0] > 0 {
		t.Fatalf("committed %v, %v; want nothing", got, err)
	}
}

// fakeMember is a member of a one-broker fake cluster (a transaction
// timeout of 2 s) owning the one partition of topic in, with topic out to
// publish to.
func fakeMember(t *testing.T, prefix string) (*kfake.Cluster, *Log, context.Context, string, string, *Member) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, time.Minute)
	in, out := topicName(prefix+"-in"), topicName(prefix+"-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := &assignments{owned: map[int32]bool{}}
	m, err := l.Join(MemberOptions{Group: "g-" + in, InstanceID: "one", Topics: []string{in},
		OnAssigned: a.assigned, OnRevoked: a.revoked, SessionTimeout: 6 * time.Second, TransactionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	return c, l, ctx, in, out, m
}
