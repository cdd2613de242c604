package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// BenchmarkAppend appends 100-byte records to an 8-partition topic with
// fsync on, from 1, 16 and 256 goroutines, one record or 100 records per
// Append. b.N counts Append calls.
func BenchmarkAppend(b *testing.B) {
	for _, perAppend := range []int{1, 100} {
		for _, conc := range []int{1, 16, 256} {
			if perAppend > 1 && conc > 16 {
				continue // 256×100 records in flight is too much for a small VM
			}
			b.Run(fmt.Sprintf("records=%d/conc=%d", perAppend, conc), func(b *testing.B) {
				benchAppend(b, conc, perAppend, Options{})
			})
		}
	}
}

// BenchmarkSyncRound compares one syncfs per round (SyncFilesystem) with
// an fsync per partition per batch, in BenchmarkAppend's shapes
// (records=1/conc=256 and records=100/conc=16).
func BenchmarkSyncRound(b *testing.B) {
	for _, syncfs := range []bool{false, true} {
		for _, tc := range []struct{ perAppend, conc int }{{1, 256}, {100, 16}} {
			b.Run(fmt.Sprintf("syncfs=%v/records=%d/conc=%d", syncfs, tc.perAppend, tc.conc), func(b *testing.B) {
				benchAppend(b, tc.conc, tc.perAppend, Options{SyncFilesystem: syncfs})
			})
		}
	}
}

func benchAppend(b *testing.B, conc, perAppend int, o Options) {
	const valueSize = 100
	o.Logger = slog.New(slog.DiscardHandler)
	l, err := Open(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.CreateTopic(ctx, "bench", 8, intentlog.TopicOptions{}); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%d", i)
	}
	value := make([]byte, valueSize)
	var calls atomic.Int64
	b.SetBytes(int64(valueSize * perAppend))
	b.ResetTimer()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			recs := make([]*intentlog.Record, perAppend)
			for i := range recs {
				recs[i] = &intentlog.Record{Value: value}
			}
			for {
				n := calls.Add(1)
				if n > int64(b.N) {
					return
				}
				for i, r := range recs {
					r.Key = keys[(int(n)*perAppend+i)%len(keys)]
				}
				if err := l.Append(ctx, "bench", recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	records := float64(b.N * perAppend)
	b.ReportMetric(records/secs, "records/s")
	b.ReportMetric(records*valueSize/1e6/secs, "MB/s")
}

// BenchmarkRead reads a partition of 64 batches of 125 100-byte records
// (the shape a 1,000-write Append gives each of 8 partitions) from its
// start with a new reader. b.N counts whole reads.
func BenchmarkRead(b *testing.B) {
	const batches, per = 64, 125
	l, err := Open(b.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	fillPartition(b, l, "bench", batches, per)
	b.SetBytes(batches * per * 100)
	b.ReportAllocs()
	for b.Loop() {
		r, err := l.NewReader("bench", 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < batches*per; {
			recs, err := r.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n += len(recs)
		}
		r.Close()
	}
}
