package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// answeredCtx is a context that ends once its Write was answered: its
// Done waits for the server's answer and for the producer to hand it to
// the Write, then returns a channel already closed, so that the Write
// finds both its answer and its context's end.
type answeredCtx struct {
	context.Context
	s    *script
	p    *Producer
	done chan struct{}
}

func (c answeredCtx) Done() <-chan struct{} {
	for {
		c.s.mu.Lock()
		n := c.s.batches
		c.s.mu.Unlock()
		// The producer gives the write's MaxBuffered token back right
		// after it handed the answer to the Write (a wait of a fixed
		// 20ms for that was too short on a loaded machine).
		if n > 0 && len(c.p.space) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return c.done
}

// Err is nil until the Write was answered (a context ended before the
// call sends nothing).
func (c answeredCtx) Err() error {
	c.s.mu.Lock()
	n := c.s.batches
	c.s.mu.Unlock()
	if n > 0 && len(c.p.space) == 0 {
		return context.Canceled
	}
	return nil
}

// TestWriteAnsweredBeforeCancel: a Write whose answer came before its
// context ended returns that answer, not the context's error: a caller
// was told "canceled" (and no version) for a write it could have been
// told was written, about one time in two.
func TestWriteAnsweredBeforeCancel(t *testing.T) {
	t.Parallel()
	for i := range 30 {
		s := newScript()
		p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond}, time.Millisecond)
		done := make(chan struct{})
		close(done)
		r, err := p.Put(answeredCtx{Context: context.Background(), s: s, p: p, done: done}, "t", []byte("k"), nil)
		if err != nil || r.Version == 0 {
			t.Fatalf("write %d, answered before its context ended: %+v, %v; want its version", i, r, err)
		}
	}
}

// TestWriteWithEndedContextNotSent: a Write whose context ended before
// the call fails with its error and sends nothing: it was written,
// though the caller was told "canceled" (an HTTP handler whose client
// went away, a shutdown that cancelled its context first).
func TestWriteWithEndedContextNotSent(t *testing.T) {
	t.Parallel()
	s := newScript()
	p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond}, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Put(ctx, "t", []byte("k"), []byte("v")); !errors.Is(err, context.Canceled) {
		t.Fatalf("a write with a cancelled context: %v; want context.Canceled", err)
	}
	if _, err := p.Put(context.Background(), "t", []byte("other"), nil); err != nil {
		t.Fatal(err) // the cancelled one, had it been queued, went in this batch or the one before
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.stored["t/k"]; len(v) > 0 {
		t.Fatalf("the write whose context had ended was written, at %v", v)
	}
}
