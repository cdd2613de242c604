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

// settled waits until f returns the same value 10 times in a row, 20 ms
// apart, and returns it.
func settled(f func() int64) int64 {
	last, stable := f(), 0
	for deadline := time.Now().Add(10 * time.Second); stable < 10 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := f(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

// TestStalledStreamsBoundedProcessWide: streams whose clients read
// nothing hold, all together, about the process's read-ahead budget
// (api.max_subscription_buffered_bytes), not each its own
// api.subscription_buffer_bytes (1024 such streams held 4 GiB at the
// defaults); past it each holds at most one batch, so a stream that
// reads still reaches the end; and an ended stream gives back what it
// held.
func TestStalledStreamsBoundedProcessWide(t *testing.T) {
	t.Parallel()
	const (
		value   = 16 << 10
		events  = 256 // 4 MiB
		stream  = 1 << 20
		budget  = 4 << 20
		stalled = 32
		batch   = 2 * (value + 64) // memLog reads two records at a time
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := New(newMemLog())
	if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	var evs []intent.Event
	for i := range events {
		evs = append(evs, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Op: intent.Upsert, Version: uint64(i + 1), Value: make([]byte, value)})
	}
	if err := bus.Publish(ctx, "t", evs); err != nil {
		t.Fatal(err)
	}
	pool := readahead.NewPool(budget)
	svc := NewService(bus, func(string) (int32, bool) { return 1, true }).WithLimits(Limits{BufferBytes: stream, Pool: pool})

	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client that reads nothing: its first message's send
			// never returns.
			_ = svc.Stream(sctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning"}, func() error { return nil },
				func(*wailv1.SubscribeResponse) error { <-sctx.Done(); return sctx.Err() })
		}()
	}
	held := settled(pool.Used)
	t.Logf("%d streams that read nothing hold %.1f MiB read ahead (each may hold %d MiB; the process %d MiB)",
		stalled, float64(held)/(1<<20), stream>>20, budget>>20)
	if limit := int64(budget + stalled*batch); held > limit {
		t.Fatalf("%d streams that read nothing hold %d bytes read ahead, more than the process's budget (%d) and one batch each (%d)",
			stalled, held, budget, limit)
	}
	if pool.Waits() == 0 {
		t.Fatal("no stream waited for the process's budget: the test does not fill it")
	}

	// A client that reads gets every event, past a full budget.
	got := 0
	err := svc.Stream(ctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", UntilEnd: true, MaxBatchEvents: 100}, func() error { return nil },
		func(r *wailv1.SubscribeResponse) error {
			got += len(r.Events)
			return nil
		})
	if err != nil || got != events {
		t.Fatalf("a stream that reads, beside %d that do not: %d events of %d, %v", stalled, got, events, err)
	}

	stop()
	wg.Wait()
	if n := pool.Used(); n != 0 {
		t.Fatalf("the streams ended and %d bytes are still counted read ahead", n)
	}
}
