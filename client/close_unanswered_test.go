package client

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestCloseWaitsForAnUnansweredBatch: a batch still unanswered at Close,
// its write failed at its delivery timeout, could still be stamped: Close
// waits until it no longer can (its fence, FenceAfterBreak from then for
// a server that did not tell its clock), as for an attempt lost with a
// broken stream (TestCloseWaitsForFence).
func TestCloseWaitsForAnUnansweredBatch(t *testing.T) {
	t.Parallel()
	const fence = 1500 * time.Millisecond
	release := make(chan struct{})
	s := &slowServer{hold: func(int) { <-release }}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: 200 * time.Millisecond}, fence)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
	if _, err := p.Put(context.Background(), "t", []byte("k"), []byte("v")); err == nil {
		t.Fatal("setup: a write the server never answered succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d < fence*9/10 {
		t.Fatalf("Close returned %v after it was called, with a batch unanswered that may still be stamped for %v", d, fence)
	}
}
