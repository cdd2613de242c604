package api

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := newLimiter("write", "security.quotas.write_rate", 10, 5) // 10/s, burst 5
	for _, step := range []struct {
		caller string
		cost   float64
		ms     int
		ok     bool
		wait   time.Duration
	}{
		{"a", 5, 0, true, 0},                           // the burst
		{"a", 1, 0, false, 100 * time.Millisecond},     // empty: one token in 100ms
		{"b", 5, 0, true, 0},                           // another caller has its own bucket
		{"a", 1, 100, true, 0},                         // refilled one
		{"a", 2, 150, false, 150 * time.Millisecond},   // half a token there, two needed
		{"a", 20, 1000, true, 0},                       // over the burst: waits for a full bucket, then pays it all
		{"a", 1, 1000, false, 1600 * time.Millisecond}, // in debt: -15 tokens, one needs 1.6s
		{"a", 1, 2600, true, 0},
	} {
		wait, ok := l.take(step.caller, step.cost, at(step.ms))
		if ok != step.ok || (!ok && (wait-step.wait).Abs() > time.Millisecond) {
			t.Errorf("%+v: take = %v, %v", step, wait, ok)
		}
	}
	if newLimiter("read", "x", 0, 10) != nil {
		t.Error("a zero rate made a limiter")
	}
	err := l.exhausted("token:a", 1234*time.Microsecond)
	ce := err.(*connect.Error)
	if ce.Code() != connect.CodeResourceExhausted || ce.Meta().Get(retryHeader) != "1" || !strings.Contains(err.Error(), "retry in 1ms") ||
		!strings.Contains(err.Error(), "security.quotas.write_rate") {
		t.Errorf("exhausted: %v %v", err, ce.Meta())
	}
}

// TestLimiterSweep: past maxBuckets callers, the full buckets go and the
// ones in use stay.
func TestLimiterSweep(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	l := newLimiter("read", "x", 1, 1)
	l.take("busy", 1, t0)
	for i := range maxBuckets {
		l.take(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), 0, t0)
	}
	l.take("new", 1, t0)
	if len(l.buckets) > maxBuckets {
		t.Fatalf("%d buckets, want at most %d", len(l.buckets), maxBuckets)
	}
	if _, ok := l.take("busy", 1, t0); ok {
		t.Fatal("the busy caller's empty bucket was forgotten")
	}
}
