package latency

import (
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxEventsPerKey bounds the event history of one key (besides the horizon).
const maxEventsPerKey = 8192

// Matcher pairs acknowledged writes with the events that cover them and
// records the end-to-end latency of each write: the arrival of the first
// event of its table and key with a version at or above its own, minus the
// write's intended send time.
//
// It is fit for a load generator: the history of a key is kept in version
// order (per key, versions strictly increase on the bus), so an
// acknowledgement that comes after its event finds it by binary search,
// even on a hot key; writes carry a measured flag (warm-up writes count in
// the window but not in the total); and memory is bounded: pending writes
// by maxPending (further ones are counted as untracked), events by a
// horizon (see Sweep) and a per-key cap. It is safe for concurrent use.
//
// Sweep costs what expired, not what is tracked: events enter a queue in
// arrival order as they are recorded, and a sweep visits only the keys of
// the events it takes off its front (a walk of every key, once a second
// under the lock, stalled the load generator with a million keys).
type Matcher struct {
	mu         sync.Mutex
	horizon    time.Duration
	maxPending int
	keys       map[string]map[string]*keyTrack // by table, then key: a lookup allocates nothing
	aging      []aging                         // aging[agingHead:]: events recorded, in arrival order
	agingHead  int
	pending    int
	untracked  int64
	window     *hdrhistogram.Histogram              // every match, reset by TakeWindow
	total      *hdrhistogram.Histogram              // measured writes, reset by ResetTotal
	onRecord   func(d time.Duration, measured bool) // test hook
}

type keyTrack struct {
	table, key string
	writes     []pendingWrite // acknowledged, no covering event yet
	events     []seenEvent    // events[head:] are live; ascending version and arrival
	head       int
}

// aging is an event of kt that arrived at at, in the sweep's queue.
type aging struct {
	kt *keyTrack
	at time.Time
}

type pendingWrite struct {
	version  uint64
	intended time.Time
	measured bool
}

type seenEvent struct {
	version uint64
	at      time.Time
}

// NewMatcher returns a matcher that keeps events for horizon (for
// acknowledgements that arrive after their event) and at most maxPending
// pending writes.
func NewMatcher(horizon time.Duration, maxPending int) *Matcher {
	return &Matcher{
		horizon: horizon, maxPending: maxPending, keys: make(map[string]map[string]*keyTrack),
		window: NewHistogram(), total: NewHistogram(),
	}
}

func (m *Matcher) track(table string, key []byte) *keyTrack {
	byKey := m.keys[table]
	if byKey == nil {
		byKey = make(map[string]*keyTrack)
		m.keys[table] = byKey
	}
	kt, ok := byKey[string(key)]
	if !ok {
		kt = &keyTrack{table: table, key: string(key)}
		byKey[kt.key] = kt
	}
	return kt
}

// lookup returns the track of table/key, nil if there is none.
func (m *Matcher) lookup(table string, key []byte) *keyTrack {
	return m.keys[table][string(key)]
}

// forget drops kt's key if kt is its track and holds nothing.
func (m *Matcher) forget(kt *keyTrack) {
	if len(kt.writes) > 0 || len(kt.events) > kt.head {
		return
	}
	byKey := m.keys[kt.table]
	if byKey[kt.key] != kt {
		return // forgotten already, and tracked again since
	}
	delete(byKey, kt.key)
	if len(byKey) == 0 {
		delete(m.keys, kt.table)
	}
}

// tracked returns how many keys the matcher holds.
func (m *Matcher) tracked() int {
	n := 0
	for _, byKey := range m.keys {
		n += len(byKey)
	}
	return n
}

// Acked records a write of table/key acknowledged at version, intended to be
// sent at intended; measured says whether it counts in the step's total.
func (m *Matcher) Acked(table string, key []byte, version uint64, intended time.Time, measured bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if kt := m.lookup(table, key); kt != nil {
		// Most acknowledgements come before their event: no search then.
		if evs := kt.events[kt.head:]; len(evs) > 0 && evs[len(evs)-1].version >= version {
			i := sort.Search(len(evs), func(i int) bool { return evs[i].version >= version })
			m.record(evs[i].at.Sub(intended), measured)
			return
		}
	}
	if m.pending >= m.maxPending {
		m.untracked++
		return
	}
	kt := m.track(table, key)
	kt.writes = append(kt.writes, pendingWrite{version: version, intended: intended, measured: measured})
	m.pending++
}

// Event records an event of table/key at version that arrived at at, and
// returns how many pending writes it covered.
func (m *Matcher) Event(table string, key []byte, version uint64, at time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	kt := m.track(table, key)
	if n := len(kt.events); n == kt.head || kt.events[n-1].version < version {
		if n-kt.head >= maxEventsPerKey {
			if kt.head++; kt.head >= maxEventsPerKey {
				// a hot key: its expired half goes now, not at the sweep
				kt.events = append(kt.events[:0], kt.events[kt.head:]...)
				kt.head = 0
			}
		}
		kt.events = append(kt.events, seenEvent{version: version, at: at})
		m.aging = append(m.aging, aging{kt: kt, at: at})
	}
	kept := kt.writes[:0]
	for _, w := range kt.writes {
		if w.version <= version {
			m.record(at.Sub(w.intended), w.measured)
			continue
		}
		kept = append(kept, w)
	}
	covered := len(kt.writes) - len(kept)
	clear(kt.writes[len(kept):])
	kt.writes = kept
	m.pending -= covered
	return covered
}

func (m *Matcher) record(d time.Duration, measured bool) {
	d = clamp(d)
	if m.onRecord != nil {
		m.onRecord(d, measured)
	}
	Record(m.window, d)
	if measured {
		Record(m.total, d)
	}
}

// Sweep forgets events older than the horizon before now, and keys with
// nothing left. It visits only the keys of the events that expired (the
// queue's front; an event that arrived out of order behind a later one
// goes with it).
func (m *Matcher) Sweep(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := now.Add(-m.horizon)
	for m.agingHead < len(m.aging) && m.aging[m.agingHead].at.Before(cutoff) {
		kt := m.aging[m.agingHead].kt
		m.aging[m.agingHead] = aging{}
		m.agingHead++
		for kt.head < len(kt.events) && kt.events[kt.head].at.Before(cutoff) {
			kt.head++
		}
		if kt.head > 0 && kt.head >= len(kt.events)/2 {
			kt.events = append(kt.events[:0], kt.events[kt.head:]...)
			kt.head = 0
		}
		m.forget(kt)
	}
	if m.agingHead > 0 && m.agingHead >= len(m.aging)/2 {
		m.aging = append(m.aging[:0], m.aging[m.agingHead:]...)
		m.agingHead = 0
	}
}

// GiveUp drops every pending write as unmatched: measured ones are recorded
// at now minus their intended time (a lower bound of their latency). It
// returns how many measured writes it dropped.
func (m *Matcher) GiveUp(now time.Time) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, byKey := range m.keys {
		for _, kt := range byKey {
			for _, w := range kt.writes {
				if w.measured {
					m.record(now.Sub(w.intended), true)
					n++
				}
			}
			kt.writes = nil
			m.forget(kt)
		}
	}
	m.pending = 0
	return n
}

// Pending is the number of acknowledged writes no event covered yet.
func (m *Matcher) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// Untracked is the number of writes not tracked because maxPending writes
// were pending.
func (m *Matcher) Untracked() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.untracked
}

// TakeWindow returns the latencies recorded since its last call.
func (m *Matcher) TakeWindow() Percentiles {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := Summarize(m.window)
	m.window.Reset()
	return p
}

// Total returns the latencies of measured writes since ResetTotal.
func (m *Matcher) Total() Percentiles {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Summarize(m.total)
}

// ResetTotal starts a new total (a new step).
func (m *Matcher) ResetTotal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total.Reset()
	m.untracked = 0
}
