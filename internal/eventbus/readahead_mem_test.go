package eventbus

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/readahead"
)

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestStalledStreamMemoryOfSmallEvents: streams whose clients read
// nothing hold, in the process's memory, about what they count read ahead
// (api.subscription_buffer_bytes each), also for small events, whose
// decoded form (or held encoding) takes three to four times their
// records' bytes, which was all they counted.
func TestStalledStreamMemoryOfSmallEvents(t *testing.T) {
	const (
		events = 200_000
		stream = 4 << 20
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	log, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	bus := New(log)
	for _, parts := range []int32{1} {
		table := fmt.Sprintf("t%d", parts)
		if err := bus.CreateTable(ctx, table, parts, 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < events; i += 1000 {
			var evs []intent.Event
			for j := i; j < i+1000; j++ {
				evs = append(evs, intent.Event{Table: table, Key: fmt.Appendf(nil, "k%05d", j%200), Op: intent.Upsert, Version: uint64(j + 1),
					Value: fmt.Appendf(nil, "r1234w%d|hd_t|k%05d|xxxxxxxxxxxxxxxxxxxxxxxx", j, j%200), IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1})
			}
			if err := bus.Publish(ctx, table, evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		parts   int32
		stalled int
		encoded bool
	}{{1, 4, false}, {1, 4, true}} {
		t.Run(fmt.Sprintf("partitions=%d/encoded=%v", tc.parts, tc.encoded), func(t *testing.T) {
			table := fmt.Sprintf("t%d", tc.parts)
			pool := readahead.NewPool(1 << 40)
			svc := NewService(bus, func(string) (int32, bool) { return tc.parts, true }).WithLimits(Limits{BufferBytes: stream, Pool: pool})
			before := heapInUse()
			sctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for range tc.stalled {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := &wailv1.SubscribeRequest{Table: table, From: "beginning"}
					send := func(*wailv1.SubscribeResponse) error { <-sctx.Done(); return sctx.Err() }
					_ = svc.Subscribe(sctx, req, tc.encoded, func(string) error { return nil }, send)
				}()
			}
			held := settled(pool.Used)
			grown := heapInUse() - before
			stop()
			wg.Wait()
			t.Logf("%d stalled streams count %.1f MiB read ahead; the heap grew %.1f MiB", tc.stalled, float64(held)/(1<<20), float64(grown)/(1<<20))
			if limit := int64(2 * tc.stalled * stream); grown > limit {
				t.Fatalf("%d streams that read nothing, each bounded to %d MiB read ahead, hold %.1f MiB of heap (counted: %.1f MiB)",
					tc.stalled, stream>>20, float64(grown)/(1<<20), float64(held)/(1<<20))
			}
		})
	}
}
