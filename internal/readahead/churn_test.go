package readahead

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestChurnGivesEverythingBack: streams of several readers each, whose
// clients take batches (or stop), end (Close) at random moments, racing
// their readers' Wait, Acquire and Release; once all ended the pool is
// back at 0 and nothing waited for good.
func TestChurnGivesEverythingBack(t *testing.T) {
	t.Parallel()
	p := NewPool(1000)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			s := p.Stream(int64(100 + r.IntN(400)))
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
						n, err := s.Acquire(ctx, int64(1+rand.IntN(200)))
						if err != nil {
							return
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
			end := time.After(time.Duration(r.IntN(50)) * time.Millisecond)
		loop:
			for {
				if stall {
					<-end
					break
				}
				select {
				case n := <-q:
					if r.IntN(2) == 0 {
						time.Sleep(time.Duration(r.IntN(100)) * time.Microsecond)
					}
					s.Release(n)
				case <-end:
					break loop
				}
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
		t.Fatal("streams never ended")
	}
	if n := p.Used(); n != 0 {
		t.Fatalf("every stream ended and the pool holds %d", n)
	}
}
