package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestProducerMaxBufferedBytes: Write blocks while the bytes held would
// go over MaxBufferedBytes, though the count bound (MaxBuffered) is far;
// an answer gives the bytes back and lets a blocked write go; a blocked
// write ends with its context, or with ErrClosed at Close; a write larger
// than the bound goes alone.
func TestProducerMaxBufferedBytes(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := &slowServer{hold: func(int) { <-release }, arrived: make(chan int, 16)}
	value := bytes.Repeat([]byte("v"), 64<<10)
	m := func(k string) *wailv1.Mutation {
		return &wailv1.Mutation{Table: "t", Key: []byte(k), Value: value, Op: wailv1.Op_OP_UPSERT}
	}
	probe := newProducer(nil, ProducerConfig{}, time.Millisecond)
	size, err := probe.check(m("k0"))
	_ = probe.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Room for two writes, not three; one write per batch.
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, BatchSize: 1, MaxBufferedBytes: 2*size + size/2}, time.Millisecond)
	put := func(ctx context.Context, k string) chan error {
		done := make(chan error, 1)
		go func() { _, err := p.Write(ctx, m(k)); done <- err }()
		return done
	}
	arrives := func(within time.Duration) bool {
		select {
		case <-s.arrived:
			return true
		case <-time.After(within):
			return false
		}
	}
	first, second := put(context.Background(), "k1"), put(context.Background(), "k2")
	for range 2 {
		if !arrives(3 * time.Second) {
			t.Fatal("the first two writes were not sent")
		}
	}
	third := put(context.Background(), "k3")
	if arrives(200 * time.Millisecond) {
		t.Fatalf("a third write of %d bytes was sent while two were held, over MaxBufferedBytes (%d)", size, 2*size+size/2)
	}
	release <- struct{}{} // one answer: room for the third
	if !arrives(3 * time.Second) {
		t.Fatal("the third write was not sent once an answer gave its bytes back")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := put(ctx, "k4")
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a write blocked for bytes, its context cancelled: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a write blocked for bytes did not end with its context")
	}
	if arrives(100 * time.Millisecond) {
		t.Fatal("a write whose context ended while it waited for bytes was sent")
	}
	closedOut := put(context.Background(), "k5")
	time.Sleep(50 * time.Millisecond)
	closing := make(chan error, 1)
	go func() { closing <- p.Close(context.Background()) }()
	select {
	case err := <-closedOut:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("a write blocked for bytes at Close: %v; want ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not end a write blocked for bytes")
	}
	close(release) // the rest are answered
	for i, done := range []chan error{first, second, third} {
		if err := <-done; err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	if err := <-closing; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestProducerWriteOverMaxBufferedBytes: a write larger than
// MaxBufferedBytes (and within MaxBatchBytes) goes alone, not never.
func TestProducerWriteOverMaxBufferedBytes(t *testing.T) {
	t.Parallel()
	p := serveHandler(t, &slowServer{}, ProducerConfig{Linger: time.Millisecond, MaxBufferedBytes: 1 << 10}, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := p.Put(ctx, "t", fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte("v"), 64<<10)); err != nil {
			t.Fatalf("a write of 64 KiB, over MaxBufferedBytes (1 KiB): %v", err)
		}
	}
}

// TestProducerPermissionDeniedPerMutation: a server that refuses a batch
// naming a forbidden table per mutation, as wail's does (permission_denied
// for that table's writes, aborted for the others, the stream kept open),
// fails only the writes to the forbidden table: the writers batched with
// them get their writes through on a retry.
func TestProducerPermissionDeniedPerMutation(t *testing.T) {
	t.Parallel()
	s := newScript()
	s.failWrite = func(key string, try int) string {
		switch {
		case strings.HasPrefix(key, "forbidden/"):
			return connect.CodePermissionDenied.String()
		case try == 1:
			return connect.CodeAborted.String() // refused with its batch-mates
		}
		return ""
	}
	p := serveScript(t, s, ProducerConfig{Linger: 5 * time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 5 * time.Second}, time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 6*10)
	for w := range 6 {
		wg.Go(func() {
			for i := range 10 {
				table := "ok"
				if w == 0 {
					table = "forbidden"
				}
				_, err := p.Put(context.Background(), table, fmt.Appendf(nil, "w%d-%d", w, i), nil)
				var werr *WriteError
				switch {
				case table == "forbidden" && (!errors.As(err, &werr) || werr.Code != connect.CodePermissionDenied):
					errs <- fmt.Errorf("a write to the forbidden table: %v; want permission_denied", err)
				case table == "ok" && err != nil:
					errs <- fmt.Errorf("a write to a table allowed: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.tries["forbidden/w0-0"]; n != 1 {
		t.Fatalf("a write refused permission_denied was sent %d times, want once", n)
	}
}
