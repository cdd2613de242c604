package eventbus

import (
	"context"
	"testing"
	"time"
)

// TestStreamBudget: a stream holds at most BufferBytes of events read
// ahead; an event larger than the budget passes alone.
func TestStreamBudget(t *testing.T) {
	t.Parallel()
	b := newBudget(100)
	ctx := context.Background()
	got, err := b.acquire(ctx, 60)
	if err != nil || got != 60 {
		t.Fatalf("acquire 60: %d %v", got, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(short, 60); err == nil {
		t.Fatal("took 60 more bytes of a 100-byte budget holding 60")
	}
	b.release(60)
	if got, err := b.acquire(ctx, 1000); err != nil || got != 100 {
		t.Fatalf("an event over the budget: took %d, %v; want the whole budget", got, err)
	}
	b.release(100)
	if nb := newBudget(0); nb != nil {
		t.Fatal("a zero budget is unbounded")
	}
}
