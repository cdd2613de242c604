package proxy

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrOverloaded: ResourceExhausted. The table's resolver is too far
// behind: the write was refused before stamping (nothing written); retry
// after the hint.
var ErrOverloaded = errors.New("overloaded")

// Admission is the proxy's overload control (DESIGN.md, "Overload"): past
// the rate the resolver sustains, the intents it has not resolved (the
// backlog) grow; once a table's backlog reaches the limit, its writes are
// refused with ErrOverloaded and a retry hint until the backlog is below
// the limit again. So writes slow down to the rate events are published
// instead of the backlog, and the write-to-event latency, growing without
// bound. It decides only; a loop measures the backlogs (Observe).
type Admission struct {
	limit int64 // 0: off

	mu     sync.Mutex
	tables map[string]*backlog
}

type backlog struct {
	intents int64
	at      time.Time
	// drain is the resolver's rate (intents per second) between the last
	// two observations; 0 when unknown.
	drain     float64
	committed int64
}

// NewAdmission returns the control with a backlog limit per table
// (intents; 0 turns it off).
func NewAdmission(limit int64) *Admission {
	return &Admission{limit: limit, tables: map[string]*backlog{}}
}

// Observe records a table's backlog (intents logged and not yet
// resolved) and the resolver's committed position (the sum over the
// partitions of their committed offsets) at now.
func (a *Admission) Observe(table string, intents, committed int64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.tables[table]
	if !ok {
		a.tables[table] = &backlog{intents: intents, committed: committed, at: now}
		return
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 && committed >= b.committed {
		b.drain = float64(committed-b.committed) / dt
	}
	b.intents, b.committed, b.at = intents, committed, now
}

// Forget drops a table (dropped).
func (a *Admission) Forget(table string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tables, table)
}

// Hint bounds of the retry hint.
const (
	minRetryAfter = 50 * time.Millisecond
	maxRetryAfter = 5 * time.Second
)

// Admit says whether a write to table may go on; if not, the error wraps
// ErrOverloaded and says how long to wait: the time the resolver needs,
// at its last measured rate, to bring the backlog under 90% of the limit.
func (a *Admission) Admit(table string) (retryAfter time.Duration, err error) {
	if a == nil || a.limit <= 0 {
		return 0, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.tables[table]
	if !ok || b.intents < a.limit {
		return 0, nil
	}
	retryAfter = maxRetryAfter
	if b.drain > 0 {
		// Bounded in seconds, before the conversion: at a slow enough
		// rate the wait holds more nanoseconds than a Duration.
		excess := float64(b.intents - a.limit*9/10)
		retryAfter = time.Duration(min(excess/b.drain, maxRetryAfter.Seconds()) * float64(time.Second))
	}
	retryAfter = max(retryAfter, minRetryAfter)
	return retryAfter, fmt.Errorf("%w: table %s has %d intents its resolver has not published yet, the most it may (proxy.max_backlog %d); "+
		"writes are refused until it catches up: retry in %s (the producer client does)",
		ErrOverloaded, table, b.intents, a.limit, retryAfter.Round(time.Millisecond))
}

// Over returns the tables at or over the limit and their backlogs.
func (a *Admission) Over() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int64{}
	for t, b := range a.tables {
		if a.limit > 0 && b.intents >= a.limit {
			out[t] = b.intents
		}
	}
	return out
}
