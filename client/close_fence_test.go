package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCloseWaitsForFence: Close returns only once no attempt lost with a
// broken stream can still be stamped (its write failed at its delivery
// timeout meanwhile): a producer made right after it, in this process or
// another, writing the key again, could otherwise be overtaken by the
// late attempt. A Close whose context ends first says so.
func TestCloseWaitsForFence(t *testing.T) {
	t.Parallel()
	const fence = 1500 * time.Millisecond
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		wantErr error
	}{
		{name: "waits out the fence", timeout: 10 * time.Second},
		{name: "context ends first", timeout: 100 * time.Millisecond, wantErr: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScript()
			s.fail = func(n int) string {
				if n == 1 {
					return "break" // stamped and stored, then the stream ends unanswered
				}
				return ""
			}
			p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond,
				DeliveryTimeout: 200 * time.Millisecond}, fence)
			start := time.Now()
			if _, err := p.Put(context.Background(), "t", []byte("k"), []byte("v")); err == nil {
				t.Fatal("setup: the write's retry was sent before its fence")
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			closeStart := time.Now()
			err := p.Close(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Close: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if d := time.Since(closeStart); d > 2*time.Second {
					t.Fatalf("Close took %v after its context ended", d)
				}
				return
			}
			if d := time.Since(start); d < fence {
				t.Fatalf("Close returned %v after the write, before the fence of its lost attempt (%v)", d, fence)
			}
		})
	}
}
