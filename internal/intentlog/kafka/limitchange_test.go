package kafka

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// setTopicMax sets a topic's max.message.bytes from another client, as an
// operator does with kafka-configs.sh while wail runs.
func setTopicMax(t *testing.T, ctx context.Context, brokers []string, topic, max string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr(max)},
	}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err == nil {
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatalf("setting max.message.bytes of %s to %s: %v", topic, max, err)
	}
}

// expireLimits makes every cached max.message.bytes due for its refresh,
// as it is a minute after it was read.
func expireLimits(l *Log) {
	l.limits.mu.Lock()
	defer l.limits.mu.Unlock()
	for _, tl := range l.limits.topics {
		tl.read = time.Now().Add(-limitTTL)
	}
}

// waitRecordLimit waits until RecordLimit says want (its refresh runs in
// the background). The cached limits are expired at each try: a broker
// may answer the old value for a moment after the change (a loaded
// machine), and a refresh that read it would be the last for a minute.
func waitRecordLimit(t *testing.T, ctx context.Context, l *Log, topic string, want int) {
	t.Helper()
	waitFor(t, "the record limit to be read again", func() bool {
		expireLimits(l)
		n, _, err := l.RecordLimit(ctx, topic)
		return err == nil && n == want
	})
}

// TestLimitLoweredWhileRunning: max.message.bytes of a topic lowered while
// the Log writes to it. The producer kept cutting batches at the old limit
// (kgo asks it once per partition), so concurrent Appends, each well
// within the new limit, went in one batch the broker refused whole:
// every one failed with ErrTooLarge ("a retry fails the same way", says
// the proxy), and kept failing so once the limit was read again. A
// refusal reads the limit again at once and the Append goes again with
// batches of the new limit.
func TestLimitLoweredWhileRunning(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		l := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
			o.Linger = 200 * time.Millisecond // concurrent Appends in one batch for sure
		})
		topic := name("lowered")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("first")}}); err != nil {
			t.Fatal(err) // the producer now knows the partition, and its limit
		}
		setTopicMax(t, ctx, brokers, topic, "20000")
		appendTwo := func(what string) {
			t.Helper()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Go(func() {
					errs[i] = l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: make([]byte, 12000)}})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("%s: append %d of 12000 bytes (the topic now takes 20000): %v", what, i, err)
				}
			}
		}
		appendTwo("right after the change")
		expireLimits(l)
		waitRecordLimit(t, ctx, l, topic, 20000-brokerBatchOverhead)
		appendTwo("once the limit was read again")
		if vs := readValues(t, ctx, l, topic, 0); len(vs) != 5 {
			t.Errorf("%d records in the topic, want 5", len(vs))
		}

		// One record over the new limit: refused at once with the limit
		// named, no retries; the partition goes on.
		began := time.Now()
		err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: make([]byte, 50000)}})
		switch {
		case !errors.Is(err, intentlog.ErrTooLarge):
			t.Fatalf("append of 50000 bytes to a topic of max.message.bytes=20000: %v; want ErrTooLarge", err)
		case !strings.Contains(err.Error(), "max.message.bytes=20000"):
			t.Errorf("append of 50000 bytes: %v; want the topic's limit named", err)
		case time.Since(began) > 5*time.Second:
			t.Errorf("the refusal took %s", time.Since(began))
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("after")}}); err != nil {
			t.Fatalf("append after the refusal: %v", err)
		}
	})
}

// TestLimitRaisedWhileRunning: max.message.bytes of a topic raised while
// the Log writes to it (what the proxy's refusal of a large intent says to
// do). RecordLimit said the new limit a minute later, but the producer
// kept the old one for the partitions it knew: a record above it was
// refused by the client itself, as too large, until the process
// restarted.
func TestLimitRaisedWhileRunning(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		l := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "20000"}
		})
		topic := name("raised")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("first")}}); err != nil {
			t.Fatal(err)
		}
		setTopicMax(t, ctx, brokers, topic, "100000")
		expireLimits(l)
		waitRecordLimit(t, ctx, l, topic, 100000-brokerBatchOverhead)
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: make([]byte, 50000)}}); err != nil {
			t.Fatalf("append of 50000 bytes once the topic takes 100000 (RecordLimit says so): %v", err)
		}
	})
}

// TestForgetDropsLimit: a topic deleted and created again elsewhere with
// another max.message.bytes, then forgotten (Forget). Its old limit stayed
// in the cache up to a minute: RecordLimit (which the proxy checks
// writes against) said the old one.
func TestForgetDropsLimit(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		topic := name("forget-limit")
		l := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
		})
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		other := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "20000"}
		})
		if err := other.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		for {
			err := other.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("creating the topic again: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // still being deleted
		}
		l.Forget(topic)
		if n, source, err := l.RecordLimit(ctx, topic); err != nil || n != 20000-brokerBatchOverhead {
			t.Fatalf("RecordLimit after Forget = %d (%s), %v; want %d (the new topic's)", n, source, err, 20000-brokerBatchOverhead)
		}
	})
}

// TestTransactLimitLowered: max.message.bytes of an event topic lowered
// while a member's producers write to it. Their batches stayed at the old
// limit: a transaction of records each within the new one, together
// above it, aborted as too large (which the resolver takes for its
// records' fault), and so did it again. It goes through now; one record
// above the new limit fails its transaction with MESSAGE_TOO_LARGE and the
// limit named, and the next transaction goes on.
func TestTransactLimitLowered(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
	})
	ctx := testCtx(t, 2*time.Minute)
	_, out, transact := transactingMember(t, ctx, l, j, "tlower")
	for range 2 { // both producers of the shard know the partition
		if err := transact(10); err != nil {
			t.Fatal(err)
		}
	}
	setTopicMax(t, ctx, brokers, out, "20000")
	for i := range 2 {
		if err := transact(12000, 12000); err != nil {
			t.Fatalf("transaction %d of two records of 12000 bytes (the topic now takes 20000): %v", i, err)
		}
	}
	err := transact(50000)
	switch {
	case err == nil:
		t.Fatal("a transaction of a record of 50000 bytes to a topic of max.message.bytes=20000 went through")
	case !IsAborted(err) || !errors.Is(err, kerr.MessageTooLarge):
		t.Fatalf("transaction of a record over the limit: %v; want it aborted with MESSAGE_TOO_LARGE", err)
	case !strings.Contains(err.Error(), "max.message.bytes=20000"):
		t.Errorf("transaction of a record over the limit: %v; want the topic's limit named", err)
	}
	if err := transact(10); err != nil {
		t.Fatalf("transaction after the refused one: %v", err)
	}
	if vs := readValues(t, ctx, l, out, 0); len(vs) != 7 {
		t.Errorf("%d records in the topic, want 7", len(vs))
	}
}

// clientCount counts the clients made, and holds those not closed (kgo
// hooks).
type clientCount struct {
	made atomic.Int64
	open sync.Map // *kgo.Client
}

func (c *clientCount) OnNewClient(cl *kgo.Client)    { c.made.Add(1); c.open.Store(cl, true) }
func (c *clientCount) OnClientClosed(cl *kgo.Client) { c.open.Delete(cl) }

// TestRenewAfterCloseClosesClient: a producer's client replaced (a
// topic's limit changed) while its Member closes is closed too. Before, a
// client made by a replacement that ran after Close had closed the
// producers ran on, never closed: its goroutines and connections leaked.
func TestRenewAfterCloseClosesClient(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	var count clientCount
	l := openLog(t, brokers, func(o *Options) { o.ExtraClientOpts = append(o.ExtraClientOpts, kgo.WithHooks(&count)) })
	ctx := testCtx(t, time.Minute)
	in := topicName("renew-in")
	if err := (tracked{l, j}).CreateTopic(ctx, in, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	m, _ := join(t, l, "g-"+in, "one", in)
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	made := count.made.Load()
	m.renew(m.producers[0])
	if count.made.Load() != made+1 {
		t.Fatalf("renew made %d clients, want 1", count.made.Load()-made)
	}
	_ = l.Close()
	open := 0
	count.open.Range(func(any, any) bool { open++; return true })
	if open > 0 {
		t.Fatalf("%d of the %d clients made are not closed", open, count.made.Load())
	}
}

// transactingMember creates topics prefix-in and prefix-out (one
// partition each), joins a member of group g-<in> that owns in's
// partition, and returns it with out and a transact that puts records of
// the given value sizes to out, committing in's next offset with them.
func transactingMember(t *testing.T, ctx context.Context, l *Log, j *topicJanitor, prefix string) (m *Member, out string, transact func(values ...int) error) {
	t.Helper()
	in := topicName(prefix + "-in")
	out = topicName(prefix + "-out")
	for _, topic := range []string{in, out} {
		if err := (tracked{l, j}).CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(t, "the member to own the partition", func() bool { return a.count() == 1 })
	next := int64(0)
	transact = func(values ...int) error {
		var recs []*intentlog.Record
		for _, n := range values {
			recs = append(recs, &intentlog.Record{Key: []byte("k"), Value: make([]byte, n)})
		}
		err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: recs}, map[string]map[int32]int64{in: {0: next + 1}})
		if err == nil {
			next++
		}
		return err
	}
	return m, out, transact
}
