package kafka

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestConcurrentAppendsUnderTopicLimit: two Appends, each within the
// topic's AppendLimit (its max.message.bytes, lower than the producer's
// MaxMessageBytes), to one partition at once. The producer gathered both
// in one record batch of up to its own limit, which the broker refused as
// a whole: both failed with ErrTooLarge (which the proxy answers "a retry
// fails the same way") though each alone fits.
func TestConcurrentAppendsUnderTopicLimit(t *testing.T) {
	t.Parallel()
	l := openLog(t, fakeBrokers(t), func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
		o.Linger = 200 * time.Millisecond // both Appends in one batch for sure
	})
	ctx := testCtx(t, 30*time.Second)
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	limit, err := l.AppendLimit(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			// Well within the limit: a record's framing is a few bytes.
			rec := &intentlog.Record{Key: []byte("k"), Value: make([]byte, limit*6/10)}
			errs[i] = l.Append(ctx, "t", []*intentlog.Record{rec})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("append %d of %d bytes (the limit is %d): %v", i, limit*6/10, limit, err)
		}
	}
	if vs := readValues(t, ctx, l, "t", 0); len(vs) != 2 {
		t.Fatalf("%d records in the topic, want 2", len(vs))
	}
}

// TestTransactUnderTopicLimit: a transaction's records to one partition
// of an event topic whose max.message.bytes is lower than the producer's
// limit, each within it, more than it together. The producer put them in
// one batch of up to its own limit, which the broker refused: the
// transaction aborted with MESSAGE_TOO_LARGE (for the resolver, records
// too large, bisected). They go in batches the topic takes.
func TestTransactUnderTopicLimit(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := openLog(t, c.ListenAddrs(), func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
	})
	ctx := testCtx(t, time.Minute)
	in, out := topicName("tlimit-in"), topicName("tlimit-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the member to own the partition", func() bool { return a.count() == 1 })
	limit, err := l.AppendLimit(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	recs := []*intentlog.Record{
		{Key: []byte("k"), Value: make([]byte, limit*6/10)},
		{Key: []byte("k"), Value: make([]byte, limit*6/10)},
	}
	if err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: recs}, map[string]map[int32]int64{in: {0: 1}}); err != nil {
		t.Fatalf("transaction of two records of %d bytes (the limit is %d): %v", limit*6/10, limit, err)
	}
	if vs := readValues(t, ctx, l, out, 0); len(vs) != 2 {
		t.Fatalf("%d records in the topic, want 2", len(vs))
	}
}
