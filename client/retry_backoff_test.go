package client

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestProducerRetryBackoffDoubles: a write the server refuses unwritten
// again and again waits RetryBackoff before its first retry and twice
// longer before each next one (up to RetryBackoffMax), not RetryBackoff
// each time: 20+40+80+160+320+640 ms before its seventh try.
func TestProducerRetryBackoffDoubles(t *testing.T) {
	t.Parallel()
	s := newScript()
	s.failWrite = func(_ string, try int) string {
		if try <= 6 {
			return connect.CodeUnavailable.String()
		}
		return ""
	}
	p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 10 * time.Second}, time.Millisecond)
	start := time.Now()
	if _, err := p.Put(context.Background(), "t", []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1260*time.Millisecond {
		t.Fatalf("answered %s after the call, after 6 refusals: the backoff did not double (want at least 1.26 s)", took)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tries["t/k"] != 7 {
		t.Fatalf("%d tries, want 7", s.tries["t/k"])
	}
}
