package readahead

import (
	"context"
	"testing"
	"time"
)

// TestStreamBudget: a stream holds at most its max; a batch larger than
// that passes alone; without a pool or a max it is unbounded (nil).
func TestStreamBudget(t *testing.T) {
	t.Parallel()
	b := NewPool(0).Stream(100)
	ctx := context.Background()
	got, err := b.Acquire(ctx, 60)
	if err != nil || got != 60 {
		t.Fatalf("acquire 60: %d %v", got, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(short, 60); err == nil {
		t.Fatal("took 60 more bytes of a 100-byte budget holding 60")
	}
	b.Release(60)
	if got, err := b.Acquire(ctx, 1000); err != nil || got != 100 {
		t.Fatalf("a batch over the budget: took %d, %v; want the whole budget", got, err)
	}
	b.Release(100)
	if nb := (*Pool)(nil).Stream(0); nb != nil {
		t.Fatal("no pool and no max: want unbounded (nil)")
	}
}

// TestPoolPastItsMax: past the pool's max, a stream that holds nothing
// still takes a batch (no stream waits for the others), one that holds
// some waits until its client took them (and then takes its next one);
// the waits are counted; Close gives back what a stream held.
func TestPoolPastItsMax(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := NewPool(100)
	slow, fast := p.Stream(1000), p.Stream(1000)
	if _, err := slow.Acquire(ctx, 100); err != nil { // fills the pool
		t.Fatal(err)
	}
	// The fast stream holds nothing: it takes a batch past the max,
	// batch after batch as its client takes them.
	for range 3 {
		if err := fast.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := fast.Acquire(ctx, 50)
		if err != nil || p.Used() != 150 {
			t.Fatalf("a stream holding nothing, past the pool's max: took %d (%v), pool at %d; want 50, 150", n, err, p.Used())
		}
		fast.Release(n)
	}
	// The slow one holds some: it waits until its client took them.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := slow.Wait(short); err == nil {
		t.Fatal("a stream holding bytes past the pool's max may read more")
	}
	if _, err := slow.Acquire(short, 10); err == nil {
		t.Fatal("a stream holding bytes past the pool's max took more")
	}
	if p.Used() != 100 {
		t.Fatalf("pool at %d after a wait that failed, want 100", p.Used())
	}
	done := make(chan error, 1)
	go func() {
		_, err := slow.Acquire(ctx, 10)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	slow.Release(100) // its client took them
	if err := <-done; err != nil || p.Used() != 10 {
		t.Fatalf("once its client took what it held: %v, pool at %d; want nil, 10", err, p.Used())
	}
	if p.Waits() == 0 {
		t.Fatal("no wait counted")
	}
	slow.Close()
	slow.Release(10) // sent after its stream ended: not counted again
	if p.Used() != 0 {
		t.Fatalf("closed, the pool is at %d, want 0", p.Used())
	}
	if n, err := slow.Acquire(ctx, 500); err != nil || p.Used() != 0 {
		t.Fatalf("closed, a take: %d %v, pool at %d; want none counted", n, err, p.Used())
	}
}

// BenchmarkAcquireRelease: a batch's cost on a stream within its pool
// (the hot path: Wait, Acquire, Release), against a stream without one.
func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		s    *Stream
	}{{"stream", (*Pool)(nil).Stream(4 << 20)}, {"stream+pool", NewPool(512 << 20).Stream(4 << 20)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = bc.s.Wait(ctx)
					n, _ := bc.s.Acquire(ctx, 64<<10)
					bc.s.Release(n)
				}
			})
		})
	}
}
