package eventbus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/readahead"
)

// TestStalledStreamMemoryKafka: on the Kafka log, a stream whose client
// reads nothing holds its read-ahead budget and, per partition, a fetch
// its reader's client buffered and a read waiting for the budget, each of
// about a MiB on the wire (three to four decoded, for small events). Its
// readers fetched up to max_message_bytes (4 MiB) per partition, and 16
// MiB at once: a stream of 4 partitions held some 90 MiB.
func TestStalledStreamMemoryKafka(t *testing.T) {
	const (
		parts   = 4
		events  = 200_000
		stream  = 4 << 20
		stalled = 4
	)
	ks := newKfakeStreams(t, parts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i := 0; i < events; i += 1000 {
		var evs []intent.Event
		for j := i; j < i+1000; j++ {
			evs = append(evs, intent.Event{Table: replacedTable, Key: fmt.Appendf(nil, "k%05d", j%200), Op: intent.Upsert, Version: uint64(j + 1),
				Value: fmt.Appendf(nil, "r1234w%d|hd_t|k%05d|xxxxxxxxxxxxxxxxxxxxxxxx", j, j%200), IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1})
		}
		if err := ks.bus.Publish(ctx, replacedTable, evs); err != nil {
			t.Fatal(err)
		}
	}
	pool := readahead.NewPool(1 << 40)
	svc := NewService(ks.bus, func(string) (int32, bool) { return parts, true }).WithLimits(Limits{BufferBytes: stream, Pool: pool})
	before := heapInUse()
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &wailv1.SubscribeRequest{Table: replacedTable, From: "beginning"}
			send := func(*wailv1.SubscribeResponse) error { <-sctx.Done(); return sctx.Err() }
			_ = svc.Subscribe(sctx, req, true, func(string) error { return nil }, send)
		}()
	}
	held := settled(pool.Used)
	time.Sleep(2 * time.Second) // the readers' clients fetch ahead
	grown := heapInUse() - before
	stop()
	wg.Wait()
	t.Logf("%d stalled streams of %d partitions count %.1f MiB read ahead; the heap grew %.1f MiB", stalled, parts, float64(held)/(1<<20), float64(grown)/(1<<20))
	if limit := int64(stalled * (stream + parts*2*4<<20)); grown > limit {
		t.Fatalf("%d streams that read nothing, each bounded to %d MiB read ahead, hold %.1f MiB of heap (counted: %.1f MiB)",
			stalled, stream>>20, float64(grown)/(1<<20), float64(held)/(1<<20))
	}
}
