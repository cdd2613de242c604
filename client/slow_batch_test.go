package client

import (
	"context"
	"testing"
	"time"
)

// TestSlowBatchHoldsNoOtherWrites: one slow batch in flight (a table
// whose log stalls) does not keep a write of another table from being
// sent: a batch not full waits for the answers in flight at most
// holdBehind, not until its delivery timeout.
func TestSlowBatchHoldsNoOtherWrites(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := &slowServer{arrived: make(chan int, 10), hold: func(n int) {
		if n == 1 {
			<-release
		}
	}}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: time.Second}, time.Millisecond)
	t.Cleanup(func() { close(release) })
	go func() { _, _ = p.Put(context.Background(), "slow", []byte("a"), nil) }()
	<-s.arrived
	start := time.Now()
	_, err := p.Put(context.Background(), "other", []byte("b"), nil)
	if err != nil {
		t.Fatalf("a write of another table, with 7 of 8 batches free, failed after %s: %v (batches the server saw: %d)",
			time.Since(start).Round(time.Millisecond), err, len(s.seen()))
	}
}
