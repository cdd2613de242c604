package resolver

import (
	"testing"
	"time"
)

// TestCoreWindowGrowMovesDeadlines: a window lengthened by an alter moves
// the deadline of a pending intent by the growth, no more: an intent whose
// write never lands is given up once the new window from its ingest ended,
// not later (a longer wait holds the partition's commits back and delays
// the unmaterialized report).
func TestCoreWindowGrowMovesDeadlines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		from, to, when time.Duration // the window, grown to, at (after the ingest)
	}{
		{"100ms to 1s", 100 * time.Millisecond, time.Second, 50 * time.Millisecond},
		{"200ms to 600ms", 200 * time.Millisecond, 600 * time.Millisecond, 150 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewCore(Params{Table: "t", Window: tc.from, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}, 0, nil)
			c.Ingest(t0, []Entry{put(0, "a", ver(0, 0))})
			for d := time.Duration(0); d <= 5*time.Second; d += 10 * time.Millisecond {
				now := t0.Add(d)
				if d == tc.when {
					c.SetWindow(now, tc.to, time.Second)
				}
				c.Tick(now)
				for range 2 { // before and after this step's reads
					r := c.Ready()
					if len(r.Unmaterialized) > 0 {
						if d < tc.to || d > tc.to+tc.from/2 {
							t.Fatalf("given up after %s; want once the grown window %s ended", d, tc.to)
						}
						return
					}
					for _, rq := range r.Reads {
						c.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Level: rq.Level})
					}
				}
			}
			t.Fatal("never given up")
		})
	}
}
