package readahead

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestChurnTakeGivesEverythingBack is TestChurnGivesEverythingBack for
// readers that drop what they cannot take (Take, then Room before they
// read again), with batches up to past the stream's budget and the
// pool's: once every stream ended the pool is back at 0, nothing waited
// for good, and every stream whose client reads took batches.
func TestChurnTakeGivesEverythingBack(t *testing.T) {
	t.Parallel()
	for _, pmax := range []int64{0, 300, 1000} {
		p := NewPool(pmax)
		var wg sync.WaitGroup
		var starved atomic.Int32
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), uint64(pmax)))
				s := p.Stream(int64(r.IntN(400))) // 0: no budget of its own
				ctx, cancel := context.WithCancel(context.Background())
				q := make(chan int64, 8)
				var readers sync.WaitGroup
				for range 1 + r.IntN(4) {
					readers.Add(1)
					go func() {
						defer readers.Done()
						for {
							if s.Wait(ctx) != nil {
								return
							}
							size := int64(rand.IntN(1200)) // past the pool at times
							n, ok, err := s.Take(ctx, size)
							if err != nil {
								return
							}
							if !ok {
								if s.Room(ctx, size) != nil {
									return
								}
								continue
							}
							select {
							case q <- n:
							case <-ctx.Done():
								s.Release(n)
								return
							}
						}
					}()
				}
				stall := r.IntN(3) == 0
				end := time.After(time.Duration(10+r.IntN(50)) * time.Millisecond)
				took := 0
			loop:
				for {
					if stall {
						<-end
						break
					}
					select {
					case n := <-q:
						took++
						if r.IntN(2) == 0 {
							time.Sleep(time.Duration(r.IntN(100)) * time.Microsecond)
						}
						s.Release(n)
					case <-end:
						break loop
					}
				}
				if !stall && took == 0 {
					starved.Add(1)
				}
				cancel()
				if r.IntN(2) == 0 {
					s.Close() // racing its readers
					readers.Wait()
				} else {
					readers.Wait()
					s.Close()
				}
				for {
					select {
					case n := <-q:
						s.Release(n) // sent after the stream ended
						continue
					default:
					}
					break
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("pool %d: streams never ended", pmax)
		}
		if n := p.Used(); n != 0 {
			t.Fatalf("pool %d: every stream ended and the pool holds %d", pmax, n)
		}
		if n := starved.Load(); n > 0 {
			t.Fatalf("pool %d: %d streams whose clients read took nothing", pmax, n)
		}
		t.Logf("pool %d: %d reads dropped", pmax, p.Drops())
	}
}
