package readahead

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// within runs f and returns its error, failing the test when f did not
// return within d (a take or wait that ignores its context, or spins).
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: did not return within %v", what, d)
		return nil
	}
}

// TestUnboundedSides: a stream without a max of its own in a bounded
// pool takes what it asks (the pool counts it); in an unbounded pool
// (max 0) every batch is counted, and a stream holding some never waits.
func TestUnboundedSides(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		poolMax, max int64
		asks         []int64
		took         []int64
		used, waits  int64
	}{
		{"no own max, bounded pool", 100, 0, []int64{50, 30}, []int64{50, 30}, 80, 0},
		{"fills the pool exactly", 100, 100, []int64{50, 50}, []int64{50, 50}, 100, 0},
		{"no own max, unbounded pool", 0, 0, []int64{50, 1 << 30}, []int64{50, 1 << 30}, 50 + 1<<30, 0},
		{"own max, unbounded pool", 0, 100, []int64{30, 20, 0}, []int64{30, 20, 1}, 51, 0},
		{"own max, batch over it", 0, 100, []int64{500}, []int64{100}, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p := NewPool(tc.poolMax)
			s := p.Stream(tc.max)
			var held int64
			for i, n := range tc.asks {
				if err := within(t, 2*time.Second, "Wait", func() error { return s.Wait(ctx) }); err != nil {
					t.Fatalf("Wait before batch %d: %v", i, err)
				}
				var got int64
				err := within(t, 2*time.Second, "Acquire", func() (err error) { got, err = s.Acquire(ctx, n); return err })
				if err != nil || got != tc.took[i] {
					t.Fatalf("Acquire(%d): took %d, %v; want %d", n, got, err, tc.took[i])
				}
				held += got
			}
			if p.Used() != tc.used || p.Waits() != tc.waits {
				t.Fatalf("pool at %d with %d waits, want %d and %d", p.Used(), p.Waits(), tc.used, tc.waits)
			}
			s.Release(held)
			if p.Used() != 0 {
				t.Fatalf("all given back, the pool is at %d", p.Used())
			}
		})
	}
}

// TestFailedTakeGivesBackTheBudget: a take that waits for the pool and
// fails with its context returns at the context's end and gives back
// what it took of the stream's own budget: the stream can take all of
// it again.
func TestFailedTakeGivesBackTheBudget(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := NewPool(100)
	other, s := p.Stream(0), p.Stream(100)
	if _, err := other.Acquire(ctx, 100); err != nil { // fills the pool
		t.Fatal(err)
	}
	if n, err := s.Acquire(ctx, 10); err != nil || n != 10 { // its one batch past the pool
		t.Fatalf("a stream holding nothing: took %d, %v", n, err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	err := within(t, 5*time.Second, "a take waiting for the pool", func() error {
		_, err := s.Acquire(short, 50)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a take past the pool while holding some: %v, want its context's end", err)
	}
	if p.Used() != 110 || p.Waits() != 1 {
		t.Fatalf("after the failed take: pool at %d with %d waits, want 110 and 1", p.Used(), p.Waits())
	}
	s.Release(10)
	other.Release(100)
	all, stop2 := context.WithTimeout(ctx, 2*time.Second)
	defer stop2()
	if n, err := s.Acquire(all, 100); err != nil || n != 100 {
		t.Fatalf("the whole budget after a failed take: took %d, %v; want 100 (the failed take kept its share)", n, err)
	}
}

// TestCloseRacingATake: a stream closed while one of its readers takes a
// batch (between the take's read of what the stream holds and its count)
// leaves the pool at 0: Close gave back what the stream held then, and
// the take, seeing the stream closed, gives back what it added to the
// pool. The race is run until its window was hit often enough to tell;
// the pool must be at 0 after every round either way.
func TestCloseRacingATake(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a take that hangs fails
	defer cancel()
	for range 2000 {
		p := NewPool(1 << 50)
		s := p.Stream(0)
		if _, err := s.Acquire(ctx, 1); err != nil { // holding some: the next takes count in the pool
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.Acquire(ctx, 1)
			}
		}()
		for deadline := time.Now().Add(5 * time.Second); p.Used() < 64; runtime.Gosched() { // the reader is taking
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("the reader took nothing: pool at %d", p.Used())
			}
		}
		s.Close()
		close(stop)
		<-done
		if n := p.Used(); n != 0 {
			t.Fatalf("a stream closed while it took: the pool holds %d, want 0", n)
		}
	}
}

// TestCloseTwice: a second Close (what it gives back after the first is
// not counted) leaves the pool as the first did, whether the stream took
// or gave back meanwhile.
func TestCloseTwice(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a take that hangs fails
	defer cancel()
	p := NewPool(100)
	s, other := p.Stream(0), p.Stream(0)
	if _, err := other.Acquire(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, 50); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if p.Used() != 30 {
		t.Fatalf("closed twice: pool at %d, want the other stream's 30", p.Used())
	}
	s.Release(50) // sent after the stream ended
	_, _ = s.Acquire(ctx, 20)
	s.Close()
	if p.Used() != 30 {
		t.Fatalf("closed again after a release and a take: pool at %d, want 30", p.Used())
	}
}

// TestTakeDropsPastThePool: Take takes at once where Acquire would not
// wait for the pool (a stream holding nothing, a pool with room), else
// takes nothing, says so and counts a drop; Room returns once a Take
// of that many bytes would take them; a stream's own budget is waited
// for (its client is merely slow), counted in the pool meanwhile.
func TestTakeDropsPastThePool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := NewPool(100)
	a, b := p.Stream(0), p.Stream(0)
	if n, ok, err := a.Take(ctx, 150); !ok || err != nil || n != 150 {
		t.Fatalf("a stream holding nothing, past the pool: Take = %d %v %v", n, ok, err)
	}
	if n, ok, err := a.Take(ctx, 10); ok || err != nil || n != 0 || p.Used() != 150 || p.Drops() != 1 {
		t.Fatalf("a stream holding events, pool full: Take = %d %v %v (used %d, drops %d); want nothing taken, one drop",
			n, ok, err, p.Used(), p.Drops())
	}
	if n, ok, _ := b.Take(ctx, 10); !ok || n != 10 {
		t.Fatalf("another stream holding nothing: Take = %d %v", n, ok)
	}
	roomed := make(chan error, 1)
	go func() { roomed <- a.Room(ctx, 10) }()
	select {
	case err := <-roomed:
		t.Fatalf("Room returned (%v) while the stream holds events and the pool is full", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Release(150)
	if err := <-roomed; err != nil {
		t.Fatal(err)
	}
	if n, ok, _ := a.Take(ctx, 10); !ok || n != 10 || p.Used() != 20 {
		t.Fatalf("after Room: Take = %d %v (used %d)", n, ok, p.Used())
	}
	a.Release(10)
	b.Release(10)

	// The stream's own budget: waited for, counted in the pool meanwhile.
	c := p.Stream(30)
	if n, ok, _ := c.Take(ctx, 30); !ok || n != 30 {
		t.Fatalf("Take of the whole budget = %d %v", n, ok)
	}
	took := make(chan int64, 1)
	go func() { n, _, _ := c.Take(ctx, 20); took <- n }()
	for deadline := time.Now().Add(5 * time.Second); p.Used() != 50 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Used() != 50 {
		t.Fatalf("a Take waiting for the stream's budget: pool used %d, want 50 (counted while it waits)", p.Used())
	}
	c.Release(30)
	if n := <-took; n != 20 {
		t.Fatalf("Take after the stream's client took: %d", n)
	}
	c.Close()
	if p.Used() != 0 {
		t.Fatalf("closed: pool used %d", p.Used())
	}
}
