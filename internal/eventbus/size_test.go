package eventbus

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestSize: the envelope's size is what the event's records take in
// Kafka's record format with the timestamp and offset deltas at their
// widest (franz-go's encoding is the oracle), Size is at least that, and
// an embedded log whose batch limit is that size takes them. (The typed
// form: TestTypedSize.)
func TestSize(t *testing.T) {
	t.Parallel()
	// batchHeader is what the embedded log's batch adds around its records.
	const batchHeader = 29
	neg := time.UnixMicro(-1) // 10-byte varints
	cases := []struct {
		name string
		e    intent.Event
	}{
		{"small upsert", intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte("v")}},
		{"empty value", intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte{}}},
		{"delete", intent.Event{Table: "t", Key: []byte("k"), Op: intent.Delete, Version: 1 << 62}},
		{"widest fields", intent.Event{Table: strings.Repeat("t", 200), Key: []byte(strings.Repeat("k", 4096)), Op: intent.Upsert,
			Version: 1<<64 - 1, Value: []byte("v"), IntentAt: neg, ResolvedAt: neg, CoveredIntents: 1<<32 - 1, SchemaID: 1<<32 - 1}},
		{"large value", intent.Event{Table: "orders", Key: []byte("order-42"), Op: intent.Upsert, Version: 1 << 60,
			Value: []byte(strings.Repeat("x", 300<<10)), IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 3}},
		{"large key delete", intent.Event{Table: "t", Key: []byte(strings.Repeat("\xff", 4096)), Op: intent.Delete, Version: 1 << 50}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			size := envelopeSize(&c.e)
			if s := Size(&c.e); s < size {
				t.Fatalf("Size = %d, below the envelope's %d", s, size)
			}
			_, recs, err := New(nil).Records(t.Context(), c.e.Table, []intent.Event{c.e})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, r := range recs {
				want += kafkaWidest(r)
			}
			if size != want {
				t.Fatalf("Size = %d, want %d", size, want)
			}
			log, err := embedded.Open(t.TempDir(), embedded.Options{MaxBatchBytes: int64(batchHeader + size), MaxRecordBytes: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			b := New(log)
			if err := b.CreateTable(context.Background(), c.e.Table, 1, 0); err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(context.Background(), c.e.Table, []intent.Event{c.e}); err != nil {
				t.Fatalf("an embedded log whose batch limit is Size (%d): %v", size, err)
			}
		})
	}
}

// kafkaWidest is the size of r in Kafka's record format with its
// timestamp and offset deltas at their widest.
func kafkaWidest(r *intentlog.Record) int {
	k := kmsg.Record{TimestampDelta64: math.MinInt64, OffsetDelta: math.MinInt32, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		k.Headers = append(k.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
	}
	k.Length = int32(len(k.AppendTo(nil)) - 1) // what follows the length (1 byte when 0)
	return len(k.AppendTo(nil))
}
