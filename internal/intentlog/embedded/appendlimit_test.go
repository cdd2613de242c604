package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendLimit: AppendLimit is exact: records whose encodings take
// exactly that many bytes in all are appended in one Append, one byte
// more is refused as a whole, though every record fits RecordLimit.
func TestAppendLimit(t *testing.T) {
	t.Parallel()
	l, err := Open(t.TempDir(), Options{NoSync: true, MaxBatchBytes: 8192, MaxRecordBytes: 4096, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	limit, err := l.AppendLimit(ctx, "t")
	if err != nil || limit != 8192-batchHeaderLen {
		t.Fatalf("AppendLimit = %d, %v; want %d", limit, err, 8192-batchHeaderLen)
	}
	// Three records of about a third each, the last one sized to make the
	// total exact.
	recs := func(total int) []*intentlog.Record {
		var out []*intentlog.Record
		left := total
		for i := 0; i < 3; i++ {
			r := &intentlog.Record{Key: []byte{'k', byte(i)}}
			size := total / 3
			if i == 2 {
				size = left
			}
			r.Value = []byte{}
			for len(appendRecord(nil, 0, r)) < size {
				r.Value = append(r.Value, 'x')
			}
			left -= len(appendRecord(nil, 0, r))
			out = append(out, r)
		}
		if left != 0 {
			t.Fatalf("cannot build records of exactly %d bytes", total)
		}
		return out
	}
	if err := l.Append(ctx, "t", recs(limit)); err != nil {
		t.Errorf("records of exactly the limit (%d bytes): %v", limit, err)
	}
	if err := l.Append(ctx, "t", recs(limit+1)); !errors.Is(err, intentlog.ErrTooLarge) {
		t.Errorf("records one byte over the limit: %v, want ErrTooLarge", err)
	}
}
