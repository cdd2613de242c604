package latency

import (
	"slices"
	"testing"
	"time"
)

// mstep is an ack (event false) or an event of table/key at version, at ms
// milliseconds after t0; an ack's ms is its intended send time.
type mstep struct {
	event    bool
	table    string
	key      string
	version  uint64
	ms       int
	measured bool
}

func ackAt(key string, v uint64, ms int) mstep {
	return mstep{table: "t", key: key, version: v, ms: ms, measured: true}
}
func evAt(key string, v uint64, ms int) mstep {
	return mstep{event: true, table: "t", key: key, version: v, ms: ms}
}

func TestMatcher(t *testing.T) {
	t.Parallel()
	warm := func(s mstep) mstep { s.measured = false; return s }
	inTable := func(s mstep, table string) mstep { s.table = table; return s }
	tests := []struct {
		name        string
		steps       []mstep
		wantMs      []int // measured latencies, sorted
		wantWindow  int64 // every latency recorded (warm-up too)
		wantPending int
	}{
		{"one write one event", []mstep{ackAt("a", 1, 0), evAt("a", 1, 7)}, []int{7}, 1, 0},
		{"event covers every lower version", []mstep{ackAt("a", 1, 0), ackAt("a", 2, 1), ackAt("a", 3, 2), evAt("a", 3, 10)}, []int{8, 9, 10}, 3, 0},
		{"event covers only lower versions", []mstep{ackAt("a", 1, 0), ackAt("a", 5, 1), evAt("a", 3, 4)}, []int{4}, 1, 1},
		{"a later event covers the rest", []mstep{ackAt("a", 1, 0), ackAt("a", 5, 1), evAt("a", 3, 4), evAt("a", 6, 9)}, []int{4, 8}, 2, 0},
		{"event before the ack", []mstep{evAt("a", 4, 5), ackAt("a", 4, 1)}, []int{4}, 1, 0},
		{"first covering event wins", []mstep{evAt("a", 1, 3), evAt("a", 2, 5), evAt("a", 3, 8), ackAt("a", 2, 0)}, []int{5}, 1, 0},
		{"an older event does not cover", []mstep{evAt("a", 1, 3), ackAt("a", 2, 0)}, nil, 0, 1},
		{"keys do not mix", []mstep{ackAt("a", 1, 0), ackAt("b", 2, 0), evAt("b", 5, 3)}, []int{3}, 1, 1},
		{"tables do not mix", []mstep{inTable(ackAt("a", 1, 0), "x"), inTable(evAt("a", 5, 3), "y")}, nil, 0, 1},
		{"warm-up writes count in the window only", []mstep{warm(ackAt("a", 1, 0)), ackAt("a", 2, 1), evAt("a", 2, 6)}, []int{5}, 2, 0},
		{"an out-of-order event leaves the history alone", []mstep{evAt("a", 9, 1), ackAt("a", 3, 0), ackAt("a", 10, 2), evAt("a", 4, 3), evAt("a", 10, 4)}, []int{1, 2}, 2, 0},
		{"an event before the intended time clamps", []mstep{evAt("a", 1, 0), ackAt("a", 1, 5)}, []int{0}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Unix(1000, 0)
			m := NewMatcher(time.Minute, 100)
			var got []int
			m.onRecord = func(d time.Duration, measured bool) {
				if measured {
					got = append(got, int(d.Round(time.Millisecond)/time.Millisecond))
				}
			}
			for _, s := range tc.steps {
				at := t0.Add(time.Duration(s.ms) * time.Millisecond)
				if s.event {
					m.Event(s.table, []byte(s.key), s.version, at)
				} else {
					m.Acked(s.table, []byte(s.key), s.version, at, s.measured)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantMs) {
				t.Errorf("measured latencies = %v ms, want %v", got, tc.wantMs)
			}
			if n := m.Total().Count; n != int64(len(tc.wantMs)) {
				t.Errorf("total count = %d, want %d", n, len(tc.wantMs))
			}
			if n := m.TakeWindow().Count; n != tc.wantWindow {
				t.Errorf("window count = %d, want %d", n, tc.wantWindow)
			}
			if p := m.Pending(); p != tc.wantPending {
				t.Errorf("pending = %d, want %d", p, tc.wantPending)
			}
		})
	}
}

func TestMatcherWindowAndSweep(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Second, 1000)
	for i := range 100 {
		key := []byte{byte(i)}
		m.Acked("t", key, 1, t0, true)
		m.Event("t", key, 1, t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	w := m.TakeWindow()
	if w.Count != 100 || w.P50 < 49 || w.P50 > 51 || w.Max < 99 {
		t.Errorf("window = %+v", w)
	}
	if w := m.TakeWindow(); w.Count != 0 {
		t.Errorf("second window count = %d, want 0", w.Count)
	}
	if tot := m.Total(); tot.Count != 100 {
		t.Errorf("total count = %d, want 100", tot.Count)
	}
	m.Acked("t", []byte("pending"), 1, t0, true)
	m.Sweep(t0.Add(time.Minute))
	if n := m.tracked(); n != 1 {
		t.Errorf("after sweep %d keys remain, want 1 (the pending one)", n)
	}
}

func TestMatcherBoundsAndGiveUp(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Second, 2)
	m.Acked("t", []byte("a"), 1, t0, true)
	m.Acked("t", []byte("b"), 1, t0, false)
	m.Acked("t", []byte("c"), 1, t0, true) // over maxPending
	if m.Pending() != 2 || m.Untracked() != 1 {
		t.Fatalf("pending %d, untracked %d; want 2 and 1", m.Pending(), m.Untracked())
	}
	if n := m.GiveUp(t0.Add(3 * time.Second)); n != 1 {
		t.Errorf("GiveUp = %d measured writes, want 1", n)
	}
	if tot := m.Total(); tot.Count != 1 || tot.Max < 2999 {
		t.Errorf("a given-up write is recorded at the give-up time: total %+v", tot)
	}
	if m.Pending() != 0 {
		t.Errorf("pending %d after GiveUp", m.Pending())
	}
	// Events older than the horizon are forgotten, and so are idle keys.
	m.Event("t", []byte("d"), 5, t0)
	m.Sweep(t0.Add(2 * time.Second))
	if m.tracked() != 0 || len(m.keys) != 0 {
		t.Errorf("%d keys (%d tables) left after the sweep, want 0", m.tracked(), len(m.keys))
	}
	m.Acked("t", []byte("d"), 5, t0, true)
	if m.Pending() != 1 {
		t.Errorf("an event past the horizon still matched")
	}
	m.ResetTotal()
	if m.Total().Count != 0 || m.Untracked() != 0 {
		t.Errorf("ResetTotal left %+v, untracked %d", m.Total(), m.Untracked())
	}
}

func TestMatcherHotKeyHistoryIsCapped(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Hour, 10)
	for v := range uint64(3 * maxEventsPerKey) {
		m.Event("t", []byte("hot"), v+1, t0.Add(time.Duration(v)*time.Microsecond))
	}
	kt := m.keys["t"]["hot"]
	if live := len(kt.events) - kt.head; live > maxEventsPerKey {
		t.Errorf("%d events kept for one key, cap %d", live, maxEventsPerKey)
	}
	// without a sweep (the horizon is an hour): the history is compacted
	// as it goes
	if len(kt.events) > 2*maxEventsPerKey {
		t.Errorf("%d events held for one key (%d live), want at most %d", len(kt.events), len(kt.events)-kt.head, 2*maxEventsPerKey)
	}
	// The newest events are the ones kept: a late ack still finds its event.
	m.Acked("t", []byte("hot"), 3*maxEventsPerKey, t0, true)
	if m.Pending() != 0 {
		t.Errorf("the late ack of the newest version found no event")
	}
}

// TestMatcherKeysByTable: the same key in two tables is two keys, and a
// write and its event of a key already tracked allocate nothing (the
// bench's load generator shares the cores with the server it measures).
func TestMatcherKeysByTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Hour, 1000)
	m.Acked("a", []byte("k"), 5, t0, true)
	m.Event("b", []byte("k"), 9, t0.Add(time.Millisecond))
	if m.Pending() != 1 || m.tracked() != 2 {
		t.Fatalf("an event of table b covered a write of table a: pending %d, keys %d", m.Pending(), m.tracked())
	}
	m.Event("a", []byte("k"), 5, t0.Add(2*time.Millisecond))
	if m.Pending() != 0 || m.Total().Count != 1 {
		t.Fatalf("the event of table a did not cover its write: pending %d, %+v", m.Pending(), m.Total())
	}
	key := []byte("k")
	v := uint64(10)
	allocs := testing.AllocsPerRun(100, func() {
		v++
		m.Acked("a", key, v, t0, true)
		m.Event("a", key, v, t0.Add(time.Millisecond))
	})
	if allocs != 0 {
		t.Errorf("a write and its event of a tracked key allocate %.1f times, want 0", allocs)
	}
}

// TestMatcherSweepQueue: a sweep forgets what expired, in the order it
// arrived, and only that: a key forgotten and tracked again keeps its new
// history, a key with a pending write stays, and the queue does not grow
// with what it let go.
func TestMatcherSweepQueue(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	m := NewMatcher(time.Second, 100)
	m.Event("t", []byte("a"), 1, ms(0))
	m.Event("t", []byte("b"), 1, ms(10))
	m.Acked("t", []byte("b"), 2, ms(5), true) // pending: b stays
	m.Event("t", []byte("c"), 1, ms(20))
	m.Sweep(ms(1015)) // a and b's event expire, not c's
	if m.lookup("t", []byte("a")) != nil {
		t.Error("a: kept after its only event expired")
	}
	if kt := m.lookup("t", []byte("b")); kt == nil || len(kt.writes) != 1 || len(kt.events) != kt.head {
		t.Errorf("b: want its pending write and no live event, have %+v", kt)
	}
	if kt := m.lookup("t", []byte("c")); kt == nil || len(kt.events)-kt.head != 1 {
		t.Errorf("c: want its event, have %+v", kt)
	}
	// a again, then the queue's entry of c's old event and a's new one
	m.Event("t", []byte("a"), 2, ms(1500))
	m.Sweep(ms(2100))
	if kt := m.lookup("t", []byte("a")); kt == nil || len(kt.events)-kt.head != 1 {
		t.Errorf("a, tracked again: want its new event, have %+v", kt)
	}
	if m.lookup("t", []byte("c")) != nil {
		t.Error("c: kept after its event expired")
	}
	m.Acked("t", []byte("a"), 2, ms(1400), true)
	if m.Pending() != 1 || m.Total().Count != 1 {
		t.Errorf("a's new event did not match its write: pending %d, total %+v", m.Pending(), m.Total())
	}
	for i := range 10000 {
		m.Event("t", []byte{byte(i), byte(i >> 8)}, 1, ms(3000+i))
		if i%100 == 0 {
			m.Sweep(ms(3000 + i))
		}
	}
	if live := len(m.aging) - m.agingHead; live > 1100 || len(m.aging) > 2*1100 {
		t.Errorf("sweep queue: %d entries, %d live; want at most a second of events live and twice that held", len(m.aging), live)
	}
	if n := m.tracked(); n > 1102 {
		t.Errorf("%d keys tracked, want the last second's and b's", n)
	}
	// over maxPending, an acknowledgement does not track its key
	m2 := NewMatcher(time.Second, 0)
	m2.Acked("t", []byte("x"), 1, t0, true)
	if m2.tracked() != 0 || m2.Untracked() != 1 {
		t.Errorf("an untracked write left %d keys, untracked %d", m2.tracked(), m2.Untracked())
	}
}

// BenchmarkMatcherSweep: a sweep once a second with a million keys
// tracked, of which a thousand had an event expire.
func BenchmarkMatcherSweep(b *testing.B) {
	t0 := time.Unix(1000, 0)
	m := NewMatcher(time.Hour, 1<<20)
	key := func(i int) []byte { return []byte{byte(i), byte(i >> 8), byte(i >> 16), 'k'} }
	for i := range 1 << 20 {
		m.Acked("t", key(i), 1<<62, t0, false) // pending: tracked for good
	}
	at := t0
	b.ResetTimer()
	for i := range b.N {
		for j := range 1000 {
			m.Event("t", key(i*1000+j), 1, at)
		}
		at = at.Add(time.Second)
		m.Sweep(at.Add(time.Hour))
	}
}
