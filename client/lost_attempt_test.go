package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestLostAttemptThenRefusal: a write's first attempt is stored and its
// answer lost with the stream; every retry is refused with no version.
// The producer does not report only the last refusal ("nothing
// written"): it says an earlier attempt may have been written.
func TestLostAttemptThenRefusal(t *testing.T) {
	t.Parallel()
	s := newScript()
	s.fail = func(n int) string {
		if n == 1 {
			return "break" // stamped and stored, then the stream ends unanswered
		}
		return ""
	}
	s.failWrite = func(_ string, try int) string {
		if try == 1 {
			return "" // the lost attempt: stored
		}
		return connect.CodeUnavailable.String() // "refused, nothing written"
	}
	p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond,
		DeliveryTimeout: 300 * time.Millisecond}, time.Millisecond)
	_, err := p.Put(context.Background(), "t", []byte("k"), []byte("v"))
	s.mu.Lock()
	stored := len(s.stored["t/k"])
	s.mu.Unlock()
	if stored == 0 {
		t.Fatal("setup: the first attempt was not stored")
	}
	var werr *WriteError
	if !errors.As(err, &werr) {
		t.Fatalf("err %v; want a WriteError", err)
	}
	if werr.Version == 0 && !strings.Contains(werr.Message, "may have been written") {
		t.Fatalf("the write was stored by its first attempt (lost with the stream), but the producer reports only the last refusal: %#v", werr)
	}
}
