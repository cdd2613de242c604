package resolver

import (
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// The simulated proxy runs in the resolver's process (simConfig.landing):
// each of its store writes is known in flight (landing.Writes) from before
// its intents are logged until its store write returned, and the loop
// holds a read whose version such a write's range holds (landing.go,
// queueReads). When the write ended, a held read takes the row the write
// stored (landing.Write.Row: the newest mutation of its key the store
// applied) if that is at least the version the read must find, marked
// Landed; else it asks again whether another write holds its version, or
// reads the store. A handed-over row is the state right after that write
// committed, which may be older than the store's by the time the core
// gets it.

// simWrite is one store write of the simulated proxy.
type simWrite struct {
	lo, hi uint64
	end    time.Time // when the store write returns
	rows   bool      // the store answered it: it hands its rows over
	ended  bool
	stored map[string]stored // per key, the newest mutation the store applied
}

// heldRead is a read the loop holds on a store write in flight.
type heldRead struct {
	rq ReadRequest
	w  *simWrite
}

// begin records a store write of muts in flight (nil without landing).
// Now and then its range reaches below its own versions: batches stamped
// at the same time interleave their versions.
func (s *sim) begin(muts []apply) *simWrite {
	if !s.cfg.landing {
		return nil
	}
	w := &simWrite{lo: muts[0].v, hi: muts[len(muts)-1].v, stored: map[string]stored{}}
	if s.rng.Intn(5) == 0 {
		w.lo = ver(max(int(s.now.Sub(t0)/time.Millisecond)-s.rng.Intn(6), 0), 0)
	}
	s.inflight = append(s.inflight, w)
	return w
}

// end says when w's store write returns and whether the store answered
// it (then the proxy tells what it stored: landing.Write.Stored).
func (s *sim) end(w *simWrite, at time.Time, answered bool) {
	if w == nil {
		return
	}
	w.end, w.rows = at, answered && !s.cfg.readBack
}

// applied records that the store applied a of w.
func (w *simWrite) applied(a apply) {
	if cur, ok := w.stored[a.key]; !ok || cur.v < a.v {
		w.stored[a.key] = stored{at: a.at, v: a.v, d: a.del}
	}
}

// hold holds rq on the earliest store write in flight whose range holds
// its version, as the loop does; false: none does (or no landing).
func (s *sim) hold(rq ReadRequest) bool {
	if !s.cfg.landing || rq.Version == 0 || rq.Probe {
		return false
	}
	for _, w := range s.inflight {
		if w.lo <= rq.Version && rq.Version <= w.hi {
			s.held = append(s.held, heldRead{rq: rq, w: w})
			return true
		}
	}
	return false
}

// endWrites ends the store writes due (after applyDue applied what they
// stored) and releases the reads held on them: with the row the write
// stored when it covers the read's version, else held again or read from
// the store now.
func (s *sim) endWrites() {
	kept := s.inflight[:0]
	for _, w := range s.inflight {
		if s.now.Before(w.end) {
			kept = append(kept, w)
			continue
		}
		w.ended = true
	}
	clear(s.inflight[len(kept):])
	s.inflight = kept
	held := s.held
	s.held = nil
	for _, h := range held {
		if !h.w.ended {
			s.held = append(s.held, h)
			continue
		}
		if st, ok := h.w.stored[string(h.rq.Key)]; ok && h.w.rows && st.v >= h.rq.Version {
			r := ReadResult{Key: h.rq.Key, Seq: h.rq.Seq, Level: h.rq.Level, Found: true, Landed: true,
				Row: store.Row{Version: st.v, Deleted: st.d}}
			if !st.d {
				r.Row.Value = []byte(fmt.Sprint(st.v))
			}
			due := s.now
			if s.rng.Intn(4) == 0 { // the loop is busy: the row gets older still
				due = due.Add(time.Duration(1+s.rng.Intn(10)) * time.Millisecond)
			}
			s.reads = append(s.reads, simRead{res: r, due: due})
			continue
		}
		if s.hold(h.rq) {
			continue
		}
		s.reads = append(s.reads, simRead{res: s.answer(h.rq), due: s.now})
	}
}

// checkLive: while writes go on, a stored write the proxy acknowledged
// has an event at or above it within cfg.live.
func (s *sim) checkLive() {
	if s.cfg.live == 0 {
		return
	}
	for _, w := range s.writes {
		if !w.applied || w.failed || s.excused(w) || !s.now.After(w.at.Add(s.cfg.live)) {
			continue
		}
		if evs := s.events[w.key]; len(evs) > 0 && evs[len(evs)-1] >= w.v || s.landed[w.key] >= w.v {
			continue
		}
		s.t.Fatalf("key %s: write %d stored at %v has no event at or above it %v later (events %v)",
			w.key, w.v, w.at.Sub(t0), s.now.Sub(w.at), s.events[w.key])
	}
}

// TestCoreRandomizedLanding: the randomized simulation with the proxy in
// the resolver's process: reads held on its store writes, answered with
// the rows they stored (Landed), in merged batches that may hold a key
// twice, with a replica level below the primary.
func TestCoreRandomizedLanding(t *testing.T) {
	t.Parallel()
	configs := map[string]simConfig{
		"landing":          {landing: true, batches: true, live: 300 * time.Millisecond},
		"landing-readback": {landing: true, readBack: true, batches: true, live: 300 * time.Millisecond},
		// Writes that land although the proxy was told they failed
		// (ABORTs after the hold began), a replica further behind.
		"landing-ambiguous": {landing: true, batches: true, ambiguous: 4, lag: 20 * time.Millisecond},
		"landing-faults":    {landing: true, batches: true, faults: true},
		// Key a written every other millisecond, its writes landing 10
		// ms later: a held read's row never covers the intents logged
		// meanwhile. The same without landing bounds the lag.
		"landing-hot": {landing: true, batches: true, hot: true, took: 10 * time.Millisecond, live: 200 * time.Millisecond},
		"hot":         {batches: true, hot: true, took: 10 * time.Millisecond, live: 200 * time.Millisecond},
	}
	for name, cfg := range configs {
		for seed := int64(1); seed <= *simSeeds; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				t.Parallel()
				newSim(t, seed, cfg).run(3000)
			})
		}
	}
}
