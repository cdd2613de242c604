package bench

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestScheduleDue(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name        string
		rate        float64
		batch       int
		dur         time.Duration
		wantBatches int64
		wantDue3    time.Duration // Due(3) - Start
	}{
		{"one write per batch", 1000, 1, time.Second, 1000, 3 * time.Millisecond},
		{"batches of 10", 1000, 10, time.Second, 100, 30 * time.Millisecond},
		{"slower than one batch a second", 5, 10, 10 * time.Second, 5, 6 * time.Second},
		{"duration not a multiple of the interval", 1000, 10, 25 * time.Millisecond, 3, 30 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Schedule{Start: t0, Rate: tc.rate, Batch: tc.batch, Duration: tc.dur}
			if n := s.Batches(); n != tc.wantBatches {
				t.Errorf("Batches() = %d, want %d", n, tc.wantBatches)
			}
			if d := s.Due(3).Sub(t0); d != tc.wantDue3 {
				t.Errorf("Due(3) = start+%v, want start+%v", d, tc.wantDue3)
			}
		})
	}
}

// stallTarget answers in 1 ms, except from stallFrom to stallTo, when it
// answers nothing: a request that arrives then waits until stallTo.
type stallTarget struct {
	stallFrom, stallTo time.Time
	mu                 sync.Mutex
	lat                map[int64]time.Duration // by batch: answer - intended
}

func (s *stallTarget) send(_ int, d Due) {
	if now := time.Now(); !now.Before(s.stallFrom) && now.Before(s.stallTo) {
		time.Sleep(s.stallTo.Sub(now))
	}
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	s.lat[d.Seq] = time.Since(d.At)
	s.mu.Unlock()
}

// TestDispatchOpenLoopThroughStall runs 5 s of virtual time at 100 batches/s
// against a target that stalls for 1 s at t=2s: every batch of the schedule
// is sent, the rate is kept after the stall, and the batches due during the
// stall carry it in their latency (from ~1 s down to ~0), not just the few
// that were in flight.
func TestDispatchOpenLoopThroughStall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := Schedule{Start: start, Rate: 1000, Batch: 10, Duration: 5 * time.Second}
		tgt := &stallTarget{stallFrom: start.Add(2 * time.Second), stallTo: start.Add(3 * time.Second), lat: map[int64]time.Duration{}}
		sent := Dispatch(context.Background(), s, 8, tgt.send)

		if sent != 500 || len(tgt.lat) != 500 {
			t.Fatalf("sent %d batches, target saw %d; want rate x duration = 500", sent, len(tgt.lat))
		}
		if took := time.Since(start); took > 5*time.Second+10*time.Millisecond {
			t.Errorf("the run took %v: the schedule did not catch up after the stall", took)
		}
		for seq := range int64(500) {
			lat := tgt.lat[seq]
			due := s.Due(seq).Sub(start)
			var want time.Duration // the stall still ahead of the batch when it was due
			if due >= 2*time.Second && due < 3*time.Second {
				want = 3*time.Second - due
			}
			// + 1 ms of service, + up to ~13 ms in the backlog after the
			// stall (100 batches, 8 senders, 1 ms each)
			if lat < want+time.Millisecond || lat > want+30*time.Millisecond {
				t.Errorf("batch %d due at %v: latency %v, want %v + 1..30ms", seq, due, lat, want)
			}
		}
		lats := slices.Collect(maps.Values(tgt.lat))
		slices.Sort(lats)
		if p99 := lats[len(lats)*99/100]; p99 < 900*time.Millisecond {
			t.Errorf("p99 = %v: the stall is hidden (coordinated omission)", p99)
		}
	})
}

func TestDispatchStopsOnCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s := Schedule{Start: time.Now(), Rate: 100, Batch: 1, Duration: time.Hour}
		time.AfterFunc(time.Second, cancel)
		sent := Dispatch(ctx, s, 2, func(int, Due) { time.Sleep(time.Millisecond) })
		if sent < 99 || sent > 102 {
			t.Errorf("sent %d batches in 1 s at 100/s before the cancel", sent)
		}
	})
}
