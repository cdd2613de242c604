package resolver

import (
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// EventStats say how the core resolved an event: what its metrics observe
// and its trace shows. A round of a key starts with the first read asked
// for its pending intents and ends with the event that covers them.
type EventStats struct {
	// FirstCreated is the creation of the oldest intent pending when the
	// round's first read was asked, FirstRead when that was.
	FirstCreated, FirstRead time.Time
	// Reads counts the round's reads (escalations and retries included).
	Reads int
	// Spans are the round's reads, kept (up to maxReadSpans) only for a
	// key whose intents carry a trace.
	Spans []ReadSpan
	// Traces are the trace contexts (W3C traceparent) of the intents the
	// event covers, newest intent first.
	Traces []string
}

// ReadSpan is one read of a round: asked at Asked (the read runs no
// earlier), answered at Answered (zero: not yet).
type ReadSpan struct {
	Level           store.Level
	Asked, Answered time.Time
	Err             bool
}

// maxReadSpans bounds the reads a traced round keeps.
const maxReadSpans = 32

// round is what the core keeps of a key's round, compactly: times in
// Unix nanoseconds (0: none); spans and traces only for traced intents;
// the count of reads in keyState.reads. A key reads nothing while its
// event is on its way, so one round does for both: once the event is
// made (endRound) firstRead turns negative (-1: the round had no read)
// and the next read starts a new round.
type round struct {
	firstCreated, firstRead int64
	trace                   *roundTrace
}

type roundTrace struct {
	spans  []ReadSpan
	traces []string
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// readAsked records in the key's round a read asked at now.
func (ks *keyState) readAsked(now time.Time, level int) {
	r := &ks.round
	if r.firstRead < 0 { // the last round ended with its event
		*r, ks.reads = round{}, 0
	}
	if r.firstRead == 0 {
		r.firstRead = unixNano(now)
		for i := range ks.pending {
			// (A recheck's read is no first read of its intent.)
			if p := &ks.pending[i]; p.needs && !p.recheck && !p.created.IsZero() {
				if c := p.created.UnixNano(); r.firstCreated == 0 || c < r.firstCreated {
					r.firstCreated = c
				}
			}
		}
	}
	ks.reads++
	if ks.traced {
		if r.trace == nil {
			r.trace = &roundTrace{}
		}
		if len(r.trace.spans) < maxReadSpans {
			r.trace.spans = append(r.trace.spans, ReadSpan{Level: store.Level(level), Asked: now})
		}
	}
}

// readAnswered records the answer to the key's outstanding read.
func (ks *keyState) readAnswered(now time.Time, err error) {
	if ks.round.trace == nil {
		return
	}
	sp := ks.round.trace.spans
	if n := len(sp); n > 0 && sp[n-1].Answered.IsZero() {
		sp[n-1].Answered, sp[n-1].Err = now, err != nil
	}
}

// endRound hands the round over to the event made of covered: the
// next read starts a new one.
func (ks *keyState) endRound(covered []pending) {
	if ks.round.firstRead == 0 {
		ks.round.firstRead = -1 // no read of its own (stats unknown)
	}
	ks.round.firstRead = -abs(ks.round.firstRead)
	if !ks.traced {
		return
	}
	if ks.round.trace == nil {
		ks.round.trace = &roundTrace{}
	}
	for i := len(covered) - 1; i >= 0; i-- {
		if tp := covered[i].trace; tp != nil {
			ks.round.trace.traces = append(ks.round.trace.traces, *tp)
		}
	}
	ks.traced = false
	for i := range ks.pending {
		if ks.pending[i].trace != nil {
			ks.traced = true
		}
	}
}

func abs(n int64) int64 { return max(n, -n) }

// EventStats returns the stats of the key's event on its way to the bus
// (false when it has none): call it before Published.
func (c *Core) EventStats(key []byte) (EventStats, bool) {
	ks := c.keys[string(key)]
	if ks == nil || ks.event == nil {
		return EventStats{}, false
	}
	r := ks.round
	if r.firstRead == -1 {
		return EventStats{}, true
	}
	st := EventStats{FirstCreated: fromUnixNano(r.firstCreated), FirstRead: fromUnixNano(-r.firstRead), Reads: int(ks.reads)}
	if t := r.trace; t != nil {
		st.Spans, st.Traces = t.spans, t.traces
	}
	return st, true
}

// OldestCreated returns the creation time of the first unresolved intent
// (by offset) the core ingested, zero when every intent is resolved: for
// the lag in seconds.
func (c *Core) OldestCreated() time.Time {
	for _, s := range c.slots {
		if !s.done {
			return fromUnixNano(s.created)
		}
	}
	return time.Time{}
}
