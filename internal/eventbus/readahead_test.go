package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
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

// TestDroppedReadsDeliverEveryEventOnce: a stream whose client stops
// reading while the process's read-ahead is full drops the reads it
// cannot take (Stream.Take) and reads them again once its client took
// what it held: it still delivers every event exactly once, in offset
// order per partition, among them events published while it was
// stalled, beside streams that never read.
func TestDroppedReadsDeliverEveryEventOnce(t *testing.T) {
	t.Parallel()
	const (
		parts   = 8
		value   = 16 << 10
		events  = 8 * 96 // per partition: 1.5 MiB, two log reads
		stream  = 4 << 20
		budget  = 2 << 20
		stalled = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	version := uint64(0)
	publish := func(n int) {
		for i := 0; i < n; i += 64 {
			var evs []intent.Event
			for range 64 {
				version++
				evs = append(evs, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%05d", version), Op: intent.Upsert, Version: version, Value: make([]byte, value)})
			}
			if err := bus.Publish(ctx, "t", evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(events)
	pool := readahead.NewPool(budget)
	svc := NewService(bus, func(string) (int32, bool) { return parts, true }).WithLimits(Limits{BufferBytes: stream, Pool: pool})

	// The stream under test alone first: its readers read while the pool
	// has room, and drop what they read once it is full.
	resume := make(chan struct{})
	seen := map[uint64]int{}
	last := map[int32]int64{}
	done := errors.New("all events")
	var bad error
	errc := make(chan error, 1)
	go func() {
		errc <- svc.Stream(ctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", MaxBatchEvents: 50}, func() error { return nil },
			func(r *wailv1.SubscribeResponse) error {
				<-resume
				for _, e := range r.Events {
					seen[e.Event.Version]++
					if o, ok := last[e.Partition]; ok && e.Offset <= o && bad == nil {
						bad = fmt.Errorf("partition %d: offset %d after %d", e.Partition, e.Offset, o)
					}
					last[e.Partition] = e.Offset
				}
				if len(seen) == int(version) {
					return done
				}
				return nil
			})
	}()
	settled(pool.Used)
	drops := pool.Drops()
	if drops == 0 {
		t.Fatal("no reader of the stream dropped a read: the test does not fill the process's read-ahead")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = svc.Stream(sctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning"}, func() error { return nil },
				func(*wailv1.SubscribeResponse) error { <-sctx.Done(); return sctx.Err() })
		}()
	}
	settled(pool.Used)
	publish(parts * 16) // while stalled: the reads again find more
	close(resume)
	if err := <-errc; !errors.Is(err, done) {
		t.Fatalf("the stream that resumed ended with %v after %d events of %d", err, len(seen), version)
	}
	if bad != nil {
		t.Fatal(bad)
	}
	for v := uint64(1); v <= version; v++ {
		if seen[v] != 1 {
			t.Fatalf("event of version %d delivered %d times", v, seen[v])
		}
	}
	t.Logf("%d events delivered once each, in order; %d reads dropped while stalled, %d in all", version, drops, pool.Drops())
}
