package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestProducerDeliveryTimeoutPerWrite: in a batch the server has not
// answered, a write fails at its own delivery timeout, not at the earliest
// one of its batch: a write made later in the same batch still gets the
// server's answer when it comes before its own timeout.
func TestProducerDeliveryTimeoutPerWrite(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := &slowServer{arrived: make(chan int, 100), hold: func(int) { <-release }}
	// Linger 1.2 s: the second write, made 1 s after the first, goes in
	// the first's batch; its own delivery timeout ends 1 s after the first's.
	p := serveHandler(t, s, ProducerConfig{Linger: 1200 * time.Millisecond, DeliveryTimeout: 2 * time.Second}, time.Millisecond)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("a"), nil); first <- err }()
	time.Sleep(time.Second)
	go func() { _, err := p.Put(context.Background(), "t", []byte("b"), nil); second <- err }()
	<-s.arrived
	if b := s.seen(); len(b) != 1 || b[0].size != 2 {
		t.Fatalf("batches %+v, want one of both writes", b)
	}
	var werr *WriteError
	if err := <-first; !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
		t.Fatalf("the first write, unanswered past its delivery timeout: %v; want deadline_exceeded", err)
	}
	once.Do(func() { close(release) })
	if err := <-second; err != nil {
		t.Fatalf("the second write, answered within its delivery timeout: %v", err)
	}
}
