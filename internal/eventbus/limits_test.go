package eventbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
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

// TestAdmit counts streams per client and in total.
func TestAdmit(t *testing.T) {
	t.Parallel()
	var refused []string
	var open int
	s := NewService(nil, nil).WithLimits(Limits{MaxStreams: 3, MaxStreamsPerClient: 2,
		Refused: func(l string) { refused = append(refused, l) }, Opened: func(n int) { open = n }})
	r1, err := s.admit("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("a"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("third stream of a: %v", err)
	}
	if _, err := s.admit("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("c"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("fourth stream: %v", err)
	}
	r1()
	r1() // releasing twice frees one slot
	if open != 2 || s.Open() != 2 {
		t.Fatalf("open %d/%d, want 2", open, s.Open())
	}
	// a has one stream left: one more, not two.
	r2, err := s.admit("a")
	if err != nil {
		t.Fatalf("a's second stream after one closed: %v", err)
	}
	r2()
	if _, err := s.admit("c"); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || refused[0] != "per_client" || refused[1] != "total" {
		t.Fatalf("refused %v", refused)
	}
	s.limits.MaxStreams = 0 // only the per-client limit
	if _, err := s.admit("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admit("a"); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "a has 2 event streams open") {
		t.Fatalf("a's third stream: %v", err)
	}
	if clientOf("10.0.0.1:5000") != "10.0.0.1" || clientOf("[::1]:80") != "::1" {
		t.Fatal("clientOf")
	}
}
