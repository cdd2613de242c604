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

// readAsked records in the key's round a read asked at now.
func (ks *keyState) readAsked(now time.Time, level int) {
	r := &ks.round
	if r.FirstRead.IsZero() {
		r.FirstRead = now
		for i := range ks.pending {
			if p := &ks.pending[i]; p.needs && (r.FirstCreated.IsZero() || p.created.Before(r.FirstCreated)) {
				r.FirstCreated = p.created
			}
		}
	}
	r.Reads++
	if ks.traced && len(r.Spans) < maxReadSpans {
		r.Spans = append(r.Spans, ReadSpan{Level: store.Level(level), Asked: now})
	}
}

// readAnswered records the answer to the key's outstanding read.
func (ks *keyState) readAnswered(now time.Time, err error) {
	if n := len(ks.round.Spans); n > 0 && ks.round.Spans[n-1].Answered.IsZero() {
		ks.round.Spans[n-1].Answered, ks.round.Spans[n-1].Err = now, err != nil
	}
}

// endRound hands the round over to the event made of covered and starts
// the next one.
func (ks *keyState) endRound(covered []pending) {
	ks.stats = ks.round
	ks.round = EventStats{}
	if !ks.traced {
		return
	}
	for i := len(covered) - 1; i >= 0; i-- {
		if tp := covered[i].trace; tp != "" {
			ks.stats.Traces = append(ks.stats.Traces, tp)
		}
	}
	ks.traced = false
	for i := range ks.pending {
		if ks.pending[i].trace != "" {
			ks.traced = true
		}
	}
}

// EventStats returns the stats of the key's event on its way to the bus
// (false when it has none): call it before Published.
func (c *Core) EventStats(key []byte) (EventStats, bool) {
	ks := c.keys[string(key)]
	if ks == nil || ks.event == nil {
		return EventStats{}, false
	}
	return ks.stats, true
}

// OldestCreated returns the creation time of the first unresolved intent
// (by offset) the core ingested, zero when every intent is resolved: for
// the lag in seconds.
func (c *Core) OldestCreated() time.Time {
	for _, s := range c.slots {
		if !s.done {
			return s.created
		}
	}
	return time.Time{}
}
