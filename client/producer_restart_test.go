package client_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestProducerServerRestarts: the server restarts under a Producer whose
// writers each write their keys in rounds: every write is answered
// written (retried across the restart), per key the versions follow the
// writes' order, and each key's event of its newest version carries its
// last round.
func TestProducerServerRestarts(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dialTable(ctx, t, srv, 3)
	p, err := client.NewProducer(client.Options{Addr: srv.addr}, client.ProducerConfig{Linger: time.Millisecond,
		RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	const writers, keys = 8, 4
	rounds := make([]int, writers*keys) // rounds written per key
	versions := make([][]uint64, writers*keys)
	var mu sync.Mutex
	stop := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := 0; ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				for k := range keys {
					key := w*keys + k
					res, err := p.Put(ctx, "t", fmt.Appendf(nil, "k%d", key), []byte(strconv.Itoa(r)))
					if err != nil {
						errs <- fmt.Errorf("key %d round %d: %w", key, r, err)
						return
					}
					mu.Lock()
					rounds[key] = r + 1
					versions[key] = append(versions[key], res.Version)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	srv.stop()
	time.Sleep(300 * time.Millisecond)
	srv.start()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	before := rounds[0]
	mu.Unlock()
	for { // the writers go on after the restart (their keys' fences passed)
		mu.Lock()
		n := rounds[0]
		mu.Unlock()
		if n > before+3 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for key, vs := range versions {
		for i := 1; i < len(vs); i++ {
			if vs[i] <= vs[i-1] {
				t.Fatalf("key %d: round %d answered version %d after %d", key, i, vs[i], vs[i-1])
			}
		}
	}
	// Each key's newest event carries its last round, once every answered
	// version is on the bus.
	for {
		cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", From: "beginning", UntilEnd: true})
		if err != nil {
			t.Fatal(err)
		}
		newest := map[string]*wailv1.ChangeEvent{}
		for {
			m, err := cons.Next(ctx)
			if err != nil {
				break
			}
			if e := newest[string(m.Event.Key)]; e == nil || m.Event.Version > e.Version {
				newest[string(m.Event.Key)] = m.Event
			}
		}
		cons.Close()
		done := true
		for key, vs := range versions {
			e := newest[fmt.Sprintf("k%d", key)]
			if e == nil || e.Version < vs[len(vs)-1] {
				done = false
				break
			}
			if e.Version > vs[len(vs)-1] || string(e.Value) != strconv.Itoa(rounds[key]-1) {
				t.Fatalf("key %d: the newest event is version %d, %q; the last write, round %d, was answered at version %d",
					key, e.Version, e.Value, rounds[key]-1, vs[len(vs)-1])
			}
		}
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("not every answered write reached the bus")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
