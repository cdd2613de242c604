package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRecordLimit: RecordLimit is exact: a record whose encoding takes
// exactly that many bytes is appended, one byte more is refused; a
// MaxRecordBytes above what one batch holds is capped by MaxBatchBytes.
func TestRecordLimit(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{}, {MaxBatchBytes: 4096}, {MaxBatchBytes: 4096, MaxRecordBytes: 1 << 20}} {
		l, err := Open(t.TempDir(), Options{NoSync: true, MaxBatchBytes: opts.MaxBatchBytes, MaxRecordBytes: opts.MaxRecordBytes, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		limit, source, err := l.RecordLimit(ctx, "t")
		if err != nil || source == "" {
			t.Fatalf("RecordLimit: %d, %q, %v", limit, source, err)
		}
		rec := func(size int) *intentlog.Record {
			r := &intentlog.Record{Key: []byte("k"), Headers: []intentlog.Header{{Key: "h", Value: []byte("v")}}}
			r.Value = make([]byte, size-len(appendRecord(nil, 0, r)))
			for len(appendRecord(nil, 0, r)) > size {
				r.Value = r.Value[:len(r.Value)-1]
			}
			for len(appendRecord(nil, 0, r)) < size {
				r.Value = append(r.Value, 0)
			}
			return r
		}
		if err := l.Append(ctx, "t", []*intentlog.Record{rec(limit)}); err != nil {
			t.Errorf("MaxBatchBytes %d: a record of exactly the limit (%d bytes): %v", opts.MaxBatchBytes, limit, err)
		}
		if err := l.Append(ctx, "t", []*intentlog.Record{rec(limit + 1)}); !errors.Is(err, intentlog.ErrTooLarge) {
			t.Errorf("MaxBatchBytes %d: a record one byte over the limit: %v, want ErrTooLarge", opts.MaxBatchBytes, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
