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

// TestStalledStreamsOfManyPartitionsMemory: streams of a table of many
// partitions whose clients read nothing hold, in the process's memory,
// about the process's read-ahead budget plus one batch per stream, not
// also one log read per partition each (the read of each partition's
// reader that passed Stream.Wait before the budget filled and waited to
// be counted with its events: partitions × streams × about 1 MiB).
func TestStalledStreamsOfManyPartitionsMemory(t *testing.T) {
	const (
		parts   = 8
		value   = 16 << 10
		events  = 8 * 160 // per partition: 2.5 MiB, some three log reads
		stream  = 1 << 20
		budget  = 4 << 20
		stalled = 16
		batch   = 1<<20 + 128<<10 // an embedded log read: about 1 MiB
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	log, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	bus := New(log)
	if err := bus.CreateTable(ctx, "t", parts, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < events; i += 64 {
		var evs []intent.Event
		for j := i; j < i+64; j++ {
			evs = append(evs, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%05d", j), Op: intent.Upsert, Version: uint64(j + 1), Value: make([]byte, value)})
		}
		if err := bus.Publish(ctx, "t", evs); err != nil {
			t.Fatal(err)
		}
	}
	pool := readahead.NewPool(budget)
	svc := NewService(bus, func(string) (int32, bool) { return parts, true }).WithLimits(Limits{BufferBytes: stream, Pool: pool})
	before := heapInUse()
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &wailv1.SubscribeRequest{Table: "t", From: "beginning"}
			send := func(*wailv1.SubscribeResponse) error { <-sctx.Done(); return sctx.Err() }
			_ = svc.Subscribe(sctx, req, false, func(string) error { return nil }, send)
		}()
	}
	held := settled(pool.Used)
	time.Sleep(200 * time.Millisecond)
	grown := heapInUse() - before
	stop()
	wg.Wait()
	t.Logf("%d stalled streams of %d partitions count %.1f MiB read ahead; the heap grew %.1f MiB (budget %d MiB, dropped reads %d)",
		stalled, parts, float64(held)/(1<<20), float64(grown)/(1<<20), budget>>20, pool.Drops())
	if limit := int64(budget + stalled*batch + 4<<20); grown > limit {
		t.Fatalf("%d streams of %d partitions that read nothing hold %.1f MiB of heap, more than the process's budget (%d MiB) and one batch each (with slack: %.1f MiB)",
			stalled, parts, float64(grown)/(1<<20), budget>>20, float64(limit)/(1<<20))
	}
}
