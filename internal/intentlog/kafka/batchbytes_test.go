package kafka

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendCutsBatchesAtTheTopicLimit: the producer cuts a topic's
// record batches at its max.message.bytes (batchMaxBytes: the topic's
// limit plus the 4 bytes kgo counts for the request's records length): an
// Append of two records that each fit, and that would make a batch one
// byte larger than the topic takes, goes in two batches and is written (a
// producer that cut batches a byte later put both in one, which the broker
// refused as a whole: the Append failed with ErrTooLarge). On kfake, with
// the producer's first batch: until it has the broker's produce version,
// kgo counts the records length as 4 bytes, and the limit is exact; on a
// flexible version it counts the uvarint (3 bytes at this size), and a
// batch may be a byte over the topic's limit (see batchMaxBytes).
func TestAppendCutsBatchesAtTheTopicLimit(t *testing.T) {
	t.Parallel()
	const topicMax = 100000
	l := openLog(t, fakeBrokers(t), func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
		o.Linger = 200 * time.Millisecond // both records in one batch if it takes them
	})
	ctx := testCtx(t, 30*time.Second)
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	// sized is a record of exactly n bytes as a batch holds it (the same
	// timestamp and an offset delta below 64: recordSize).
	sized := func(n int) *intentlog.Record {
		r := &intentlog.Record{Key: []byte("k"), Value: make([]byte, n-10)}
		for recordSize(r) > n {
			r.Value = r.Value[:len(r.Value)-1]
		}
		for recordSize(r) < n {
			r.Value = append(r.Value, 0)
		}
		if recordSize(r) != n {
			t.Fatalf("cannot build a record of exactly %d bytes", n)
		}
		return r
	}
	both := topicMax + 1 - brokerBatchOverhead // the two records in one batch: a byte over the topic's limit
	recs := []*intentlog.Record{sized(both / 2), sized(both - both/2)}
	if err := l.Append(ctx, "t", recs); err != nil {
		t.Fatalf("an append of two records of %d bytes together (one batch of them is %d bytes, the topic takes %d): %v",
			both, both+brokerBatchOverhead, topicMax, err)
	}
	if vs := readValues(t, ctx, l, "t", 0); len(vs) != 2 {
		t.Fatalf("%d records in the topic, want 2", len(vs))
	}
}
