package demo

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxLatency is the largest latency the histograms track; larger ones are
// recorded as maxLatency.
const maxLatency = 10 * time.Minute

// Matcher pairs acknowledged writes with the change events that cover them.
// An event for a key at version V covers every write of that key with a
// version <= V (coalescing, superseded writes and deletes alike). The latency
// of a write is the arrival of the first event covering it minus the time
// the write was sent. Events may arrive before the write is acknowledged;
// the matcher keeps each key's recent events for a horizon to match late
// acknowledgements. It is safe for concurrent use.
type Matcher struct {
	mu       sync.Mutex
	horizon  time.Duration
	keys     map[string]*keyState
	pending  int
	matched  int64
	window   *hdrhistogram.Histogram
	total    *hdrhistogram.Histogram
	onRecord func(time.Duration) // test hook
}

type keyState struct {
	writes []pendingWrite // acknowledged, not yet covered
	events []seenEvent    // recent events, in arrival order
}

type pendingWrite struct {
	version uint64
	sent    time.Time
}

type seenEvent struct {
	version uint64
	at      time.Time
}

// Latencies summarizes a histogram.
type Latencies struct {
	Count               int64
	P50, P99, P999, Max time.Duration
}

// NewMatcher returns a matcher that remembers events for horizon (10 s when
// zero or negative).
func NewMatcher(horizon time.Duration) *Matcher {
	if horizon <= 0 {
		horizon = 10 * time.Second
	}
	return &Matcher{
		horizon: horizon,
		keys:    make(map[string]*keyState),
		window:  newHistogram(),
		total:   newHistogram(),
	}
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatency.Microseconds(), 3)
}

func (m *Matcher) state(key []byte) *keyState {
	ks, ok := m.keys[string(key)]
	if !ok {
		ks = &keyState{}
		m.keys[string(key)] = ks
	}
	return ks
}

// Acked records an acknowledged write of key at version, sent at sent.
func (m *Matcher) Acked(key []byte, version uint64, sent time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.state(key)
	ks.events = pruneEvents(ks.events, sent.Add(-m.horizon))
	var first time.Time
	for _, e := range ks.events {
		if e.version >= version && (first.IsZero() || e.at.Before(first)) {
			first = e.at
		}
	}
	if !first.IsZero() {
		m.record(first.Sub(sent))
		return
	}
	ks.writes = append(ks.writes, pendingWrite{version: version, sent: sent})
	m.pending++
}

// Event records an event of key at version that arrived at at, and returns
// how many pending writes it covered.
func (m *Matcher) Event(key []byte, version uint64, at time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.state(key)
	ks.events = append(pruneEvents(ks.events, at.Add(-m.horizon)), seenEvent{version: version, at: at})
	kept := ks.writes[:0]
	for _, w := range ks.writes {
		if w.version <= version {
			m.record(at.Sub(w.sent))
			continue
		}
		kept = append(kept, w)
	}
	covered := len(ks.writes) - len(kept)
	ks.writes = kept
	m.pending -= covered
	return covered
}

// pruneEvents drops events that arrived before cutoff.
func pruneEvents(evs []seenEvent, cutoff time.Time) []seenEvent {
	i := 0
	for i < len(evs) && evs[i].at.Before(cutoff) {
		i++
	}
	if i == 0 {
		return evs
	}
	return append(evs[:0], evs[i:]...)
}

func (m *Matcher) record(d time.Duration) {
	d = min(max(d, time.Microsecond), maxLatency)
	if m.onRecord != nil {
		m.onRecord(d)
	}
	us := d.Microseconds()
	_ = m.window.RecordValue(us)
	_ = m.total.RecordValue(us)
	m.matched++
}

// Sweep forgets keys without pending writes whose events are all older than
// the horizon before now.
func (m *Matcher) Sweep(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := now.Add(-m.horizon)
	for k, ks := range m.keys {
		ks.events = pruneEvents(ks.events, cutoff)
		if len(ks.writes) == 0 && len(ks.events) == 0 {
			delete(m.keys, k)
		}
	}
}

// Pending is the number of acknowledged writes no event covered yet.
func (m *Matcher) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// Matched is the number of writes covered by an event.
func (m *Matcher) Matched() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.matched
}

// TakeWindow returns the latencies recorded since the last call and starts a
// new window.
func (m *Matcher) TakeWindow() Latencies {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := summarize(m.window)
	m.window.Reset()
	return l
}

// Total returns the latencies recorded since the start.
func (m *Matcher) Total() Latencies {
	m.mu.Lock()
	defer m.mu.Unlock()
	return summarize(m.total)
}

func summarize(h *hdrhistogram.Histogram) Latencies {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latencies{
		Count: h.TotalCount(),
		P50:   us(h.ValueAtQuantile(50)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}
