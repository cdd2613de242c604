package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestSizeBoundsWhatALogTakes: an append of an event fits a log whose
// batch limit is Size (the bound holds), and does not fit one whose limit
// is Size less slack (the bound is tight to a few hundred bytes).
func TestSizeBoundsWhatALogTakes(t *testing.T) {
	t.Parallel()
	const slack = 200
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
			size := Size(&c.e)
			for _, limit := range []int{size, size - slack} {
				log, err := embedded.Open(t.TempDir(), embedded.Options{MaxBatchBytes: int64(batchHeader + limit), MaxRecordBytes: 1 << 30})
				if err != nil {
					t.Fatal(err)
				}
				b := New(log)
				if err := b.CreateTable(context.Background(), c.e.Table, 1, 0); err != nil {
					t.Fatal(err)
				}
				err = b.Publish(context.Background(), c.e.Table, []intent.Event{c.e})
				log.Close()
				switch {
				case limit == size && err != nil:
					t.Fatalf("Size %d is below what the log takes: %v", size, err)
				case limit < size && !errors.Is(err, intentlog.ErrTooLarge):
					t.Fatalf("Size %d is more than %d bytes above what the log takes (publish with a limit of %d: %v)", size, slack, limit, err)
				}
			}
		})
	}
}
