package demo

import (
	"slices"
	"testing"
	"time"
)

// step is an ack (event false) or an event of key at version, at ms
// milliseconds after t0.
type step struct {
	event   bool
	key     string
	version uint64
	ms      int
}

func ack(key string, v uint64, ms int) step { return step{key: key, version: v, ms: ms} }
func ev(key string, v uint64, ms int) step  { return step{event: true, key: key, version: v, ms: ms} }

func TestMatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		steps       []step
		wantMs      []int // recorded latencies, sorted
		wantPending int
	}{
		{"one write one event", []step{ack("a", 1, 0), ev("a", 1, 7)}, []int{7}, 0},
		{"event covers several writes", []step{ack("a", 1, 0), ack("a", 2, 1), ack("a", 3, 2), ev("a", 3, 10)}, []int{8, 9, 10}, 0},
		{"event covers only lower versions", []step{ack("a", 1, 0), ack("a", 5, 1), ev("a", 3, 4)}, []int{4}, 1},
		{"later event covers the rest", []step{ack("a", 1, 0), ack("a", 5, 1), ev("a", 3, 4), ev("a", 6, 9)}, []int{4, 8}, 0},
		{"event before ack", []step{ev("a", 4, 5), ack("a", 4, 1)}, []int{4}, 0},
		{"earliest covering event wins", []step{ev("a", 1, 3), ev("a", 2, 5), ev("a", 3, 8), ack("a", 2, 0)}, []int{5}, 0},
		{"older event does not cover", []step{ev("a", 1, 3), ack("a", 2, 0)}, nil, 1},
		{"delete covers earlier upsert", []step{ack("o", 10, 0), ack("o", 11, 2), ev("o", 11, 6)}, []int{4, 6}, 0},
		{"keys do not mix", []step{ack("a", 1, 0), ack("b", 2, 0), ev("b", 5, 3)}, []int{3}, 1},
		{"event outside the horizon is forgotten", []step{ev("a", 9, 0), ack("a", 9, 2000)}, nil, 1},
		{"negative latency clamps", []step{ev("a", 1, 0), ack("a", 1, 5)}, []int{0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Unix(1000, 0)
			m := NewMatcher(time.Second)
			var got []int
			m.onRecord = func(d time.Duration) { got = append(got, int(d.Round(time.Millisecond)/time.Millisecond)) }
			for _, s := range tc.steps {
				at := t0.Add(time.Duration(s.ms) * time.Millisecond)
				if s.event {
					m.Event([]byte(s.key), s.version, at)
				} else {
					m.Acked([]byte(s.key), s.version, at)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantMs) {
				t.Errorf("latencies = %v ms, want %v", got, tc.wantMs)
			}
			if p := m.Pending(); p != tc.wantPending {
				t.Errorf("pending = %d, want %d", p, tc.wantPending)
			}
			if n := m.Matched(); n != int64(len(tc.wantMs)) {
				t.Errorf("matched = %d, want %d", n, len(tc.wantMs))
			}
		})
	}
}

func TestMatcherWindowAndSweep(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Second)
	for i := range 100 {
		key := []byte{byte(i)}
		m.Acked(key, 1, t0)
		m.Event(key, 1, t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	w := m.TakeWindow()
	if w.Count != 100 || w.P50 < 49*time.Millisecond || w.P50 > 51*time.Millisecond || w.Max < 99*time.Millisecond {
		t.Errorf("window = %+v", w)
	}
	if w := m.TakeWindow(); w.Count != 0 {
		t.Errorf("second window count = %d, want 0", w.Count)
	}
	if tot := m.Total(); tot.Count != 100 {
		t.Errorf("total count = %d, want 100", tot.Count)
	}
	m.Acked([]byte("pending"), 1, t0)
	m.Sweep(t0.Add(time.Minute))
	if n := len(m.keys); n != 1 {
		t.Errorf("after sweep %d keys remain, want 1 (the pending one)", n)
	}
}
