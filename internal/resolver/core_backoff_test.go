package resolver

import (
	"math"
	"testing"
	"time"
)

// doubled is base doubled n times, capped at limit (computed without
// overflow).
func doubled(base, limit time.Duration, n int) time.Duration {
	if f := float64(base) * math.Pow(2, float64(n)); f < float64(limit) {
		return time.Duration(f)
	}
	return limit
}

// TestCoreBackoff: a key whose state is older than its intents reads again
// after BackoffMin, doubling per round up to BackoffMax, also where the
// doubling overflows.
func TestCoreBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ min, max time.Duration }{
		{time.Millisecond, 40 * time.Millisecond},
		{3 * time.Millisecond, 3 * time.Millisecond},
		{1 << 34, 1 << 35}, // shifted 30 times: 2^64, 0 in an int64
	} {
		c := NewCore(Params{Table: "t", Window: math.MaxInt64 / 4, Levels: 1, BackoffMin: tc.min, BackoffMax: tc.max}, 0, nil)
		now := t0
		c.Ingest(now, []Entry{put(0, "a", ver(0, 0))})
		rd := c.Ready()
		for round := 0; round < 40; round++ {
			if len(rd.Reads) != 1 {
				t.Fatalf("backoff %v..%v, round %d: reads %v", tc.min, tc.max, round, rd.Reads)
			}
			c.ReadDone(now, ReadResult{Key: rd.Reads[0].Key, Seq: rd.Reads[0].Seq})
			rd = c.Ready()
			if want := doubled(tc.min, tc.max, round); rd.Wake.Sub(now) != want {
				t.Fatalf("backoff %v..%v, round %d: reads again after %v, want %v", tc.min, tc.max, round, rd.Wake.Sub(now), want)
			}
			now = rd.Wake
			c.Tick(now)
			rd = c.Ready()
		}
	}
}

// TestCoreRetryBackoff: a key that failed tries again after RetryMin,
// doubling per failed attempt up to RetryMax (also where the doubling
// overflows), less a random part of up to half: every wait from half of
// it to all of it occurs, nothing else.
func TestCoreRetryBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ min, max time.Duration }{
		{4, 64}, // nanoseconds: every wait can be seen
		{4 * time.Millisecond, time.Second},
		{1 << 34, 1 << 36}, // shifted 30 times: 2^64, 0 in an int64
	} {
		c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1, RetryMin: tc.min, RetryMax: tc.max, Seed: 7}, 0, nil)
		for tries := 1; tries <= 40; tries++ {
			ks := &keyState{fail: failStreak{tries: tries}}
			d := doubled(tc.min, tc.max, tries-1)
			seen := map[time.Duration]bool{}
			lo, hi := d, time.Duration(0)
			for i := 0; i < 2000; i++ {
				w := c.retryAt(t0, ks).Sub(t0)
				if w < d-d/2 || w > d {
					t.Fatalf("retry %v..%v, try %d: waits %v, want %v to %v", tc.min, tc.max, tries, w, d-d/2, d)
				}
				seen[w] = true
				lo, hi = min(lo, w), max(hi, w)
			}
			switch {
			case d <= 64 && len(seen) != int(d/2)+1:
				t.Fatalf("retry %v..%v, try %d: waits %v, want every one from %v to %v", tc.min, tc.max, tries, seen, d-d/2, d)
			case d > 64 && (lo > d-d/2+d/20 || hi < d-d/20):
				t.Fatalf("retry %v..%v, try %d: waits from %v to %v, want about %v to %v", tc.min, tc.max, tries, lo, hi, d-d/2, d)
			}
		}
	}
}
