package kafka

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// metadataReads counts the Metadata answers the clients read (a kgo hook).
type metadataReads struct{ n atomic.Int64 }

func (m *metadataReads) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Metadata) && err == nil {
		m.n.Add(1)
	}
}

// refreshMetadata has cl read its metadata again (as it does every
// MetadataMaxAge, 5 minutes, and after errors) and waits until it did.
func refreshMetadata(t *testing.T, reads *metadataReads, cl *kgo.Client) {
	t.Helper()
	before := reads.n.Load()
	cl.ForceMetadataRefresh()
	waitFor(t, "the client to read its metadata again", func() bool { return reads.n.Load() > before })
	time.Sleep(100 * time.Millisecond) // and merge it
}

// TestLimitLoweredThenMetadataRefreshed: max.message.bytes of a topic
// lowered while the Log writes to it, read again (the refresh of a minute),
// then the producer's metadata read again (every 5 minutes, or after an
// error) before the next Append. kgo asks ProducerBatchMaxBytesFn at every
// metadata read (for partitions it then throws away, keeping the ones it
// has, with their old limit), and what it was told last was taken for the
// limit its batches are cut at: the producer was not replaced, the broker
// refused the batch of two Appends each within the new limit, and the
// Appends failed with ErrTooLarge, again and again.
func TestLimitLoweredThenMetadataRefreshed(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		ctx := testCtx(t, time.Minute)
		var reads metadataReads
		l := openLog(t, brokers, func(o *Options) {
			o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
			o.Linger = 200 * time.Millisecond // concurrent Appends in one batch for sure
			o.ExtraClientOpts = append(o.ExtraClientOpts, kgo.WithHooks(&reads))
		})
		topic := name("lowered-refresh")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("first")}}); err != nil {
			t.Fatal(err)
		}
		setTopicMax(t, ctx, brokers, topic, "20000")
		expireLimits(l)
		waitRecordLimit(t, ctx, l, topic, 20000-brokerBatchOverhead)
		refreshMetadata(t, &reads, l.prod.Load().cl)
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
				t.Errorf("append %d of 12000 bytes (the topic now takes 20000): %v", i, err)
			}
		}
	})
}

// TestTransactLimitLoweredThenMetadataRefreshed is the test above for a
// member's transactional producers.
func TestTransactLimitLoweredThenMetadataRefreshed(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	var reads metadataReads
	l := openLog(t, brokers, func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
		o.ExtraClientOpts = append(o.ExtraClientOpts, kgo.WithHooks(&reads))
	})
	ctx := testCtx(t, 2*time.Minute)
	m, out, transact := transactingMember(t, ctx, l, j, "tlowref")
	for range 2 { // both producers of the shard know the partition
		if err := transact(10); err != nil {
			t.Fatal(err)
		}
	}
	setTopicMax(t, ctx, brokers, l.names.external(out), "20000")
	expireLimits(l)
	waitRecordLimit(t, ctx, l, out, 20000-brokerBatchOverhead)
	for _, p := range m.producers {
		refreshMetadata(t, &reads, p.client())
	}
	for i := range 2 {
		if err := transact(12000, 12000); err != nil {
			t.Fatalf("transaction %d of two records of 12000 bytes (the topic now takes 20000): %v", i, err)
		}
	}
}
