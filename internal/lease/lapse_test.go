package lease

import (
	"context"
	"testing"
	"time"
)

// TestLapseIsTold: a renewal that succeeds after the lease lapsed tells
// how long it was invalid (writes were refused), once: Lapse answers it
// at the first call after that renewal and 0 after. A process paused
// past the lease (SIGSTOP, a long GC) renews at once when it wakes and
// never fails a renewal, so only this says that writes were refused;
// nothing in the log said so (hunt-v: wail SIGSTOPped 20s, 16 writes
// refused "the lease was not renewed in time", the log silent).
func TestLapseIsTold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// at 20s of the run: a pause of the process (the clock jumps), or
		// the store down for that long.
		pause, down time.Duration
		min, max    time.Duration
	}{
		{name: "paused 20s", pause: 20 * time.Second, min: 5 * time.Second, max: 15 * time.Second},
		{name: "store down 40s", down: 40 * time.Second, min: 25 * time.Second, max: 35 * time.Second},
		{name: "store down 5s", down: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			k, err := Claim(context.Background(), w, "proxy/3", me, w.opts())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			begin := w.clock()
			var told []time.Duration
			paused := false
			w.tick = func(w *world) {
				el := w.clock().Sub(begin)
				w.mu.Lock()
				if el >= 20*time.Second && !paused {
					paused = true
					w.now = w.now.Add(tc.pause)
				}
				w.down = el >= 20*time.Second && el < 20*time.Second+tc.down
				w.mu.Unlock()
				if d := k.Lapse(); d > 0 {
					told = append(told, d)
				}
				if el >= 120*time.Second {
					cancel()
				}
			}
			if err := k.Run(ctx, nil); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.max == 0 && len(told) != 0:
				t.Fatalf("told lapses %v, the lease never lapsed", told)
			case tc.max > 0 && (len(told) != 1 || told[0] < tc.min || told[0] > tc.max):
				t.Fatalf("told lapses %v, want one of %s..%s", told, tc.min, tc.max)
			}
		})
	}
}
