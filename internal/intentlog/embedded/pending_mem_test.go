package embedded

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestPendingRecordsHoldOnlyTheirBytes: the records a read keeps for the
// next Next (past maxReadRecords) hold their own bytes only, not the
// read's chunk of the file and its record and header arrays: a reader of
// every partition of a stream whose client reads nothing held half a MiB
// each, counted in no read-ahead budget.
func TestPendingRecordsHoldOnlyTheirBytes(t *testing.T) {
	const readers = 64
	l, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	noErr(t, l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}))
	// Batches of 100 small records: a read of 1024 records keeps the 76
	// of its last batch past them.
	for i := range 30 {
		var recs []*intentlog.Record
		for j := range 100 {
			recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "value %d of batch %d, a small event", j, i),
				Headers: []intentlog.Header{{Key: "h1", Value: []byte("a")}, {Key: "h2", Value: []byte("b")}}})
		}
		noErr(t, l.Append(ctx, "t", recs))
	}
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	var rs []intentlog.Reader
	for range readers {
		r, err := l.NewReader("t", 0, 0)
		noErr(t, err)
		defer r.Close()
		recs, err := r.Next(ctx)
		noErr(t, err)
		if len(recs) != maxReadRecords {
			t.Fatalf("a read returned %d records, want %d", len(recs), maxReadRecords)
		}
		rs = append(rs, r)
	}
	each := (heap() - before) / readers
	runtime.KeepAlive(rs)
	t.Logf("a reader holding 76 pending records takes %d bytes", each)
	if each > 32<<10 {
		t.Fatalf("a reader holding 76 small pending records takes %d KiB", each>>10)
	}
}
