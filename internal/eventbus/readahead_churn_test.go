package eventbus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/readahead"
)

// TestReadAheadChurnAndClose: streams of a table of several partitions
// whose clients read fast, slowly or not at all, end at random moments
// and at the service's Close, while events keep coming; every stream
// returns and the pool is back at 0.
func TestReadAheadChurnAndClose(t *testing.T) {
	t.Parallel()
	const parts = 4
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := New(newMemLog())
	if err := bus.CreateTable(ctx, "t", parts, 0); err != nil {
		t.Fatal(err)
	}
	publish := func(from, n int) {
		var evs []intent.Event
		for i := from; i < from+n; i++ {
			evs = append(evs, intent.Event{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Op: intent.Upsert, Version: uint64(i + 1), Value: make([]byte, 1<<10)})
		}
		if err := bus.Publish(ctx, "t", evs); err != nil {
			t.Error(err)
		}
	}
	publish(0, 400)
	pool := readahead.NewPool(32 << 10)
	svc := NewService(bus, func(string) (int32, bool) { return parts, true }).WithLimits(Limits{BufferBytes: 16 << 10, Pool: pool})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 400; i < 1200; i += 20 {
			publish(i, 20)
			time.Sleep(2 * time.Millisecond)
		}
	})
	for i := range 40 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 3))
			sctx, stop := context.WithTimeout(ctx, time.Duration(50+r.IntN(1500))*time.Millisecond)
			defer stop()
			mode := r.IntN(3)
			_ = svc.Stream(sctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", MaxBatchEvents: int32(r.IntN(50))}, func() error { return nil },
				func(*wailv1.SubscribeResponse) error {
					switch mode {
					case 1:
						time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
					case 2:
						<-sctx.Done()
						return sctx.Err()
					}
					return nil
				})
		})
	}
	time.Sleep(time.Second)
	svc.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("streams did not return after Close")
	}
	if n := pool.Used(); n != 0 {
		t.Fatalf("every stream ended and the pool holds %d", n)
	}
}
