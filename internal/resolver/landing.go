package resolver

import (
	"time"

	"github.com/wail-cdc/wail/internal/landing"
)

// Reads held until the store write they must find has landed.
//
// The proxy writes the store only once the intent is durable, and a merged
// batch of a thousand writes takes tens of milliseconds more to land; a
// read issued after the first-read delay alone mostly finds the old row
// and is repeated with backoff (1.2-2.8 reads per event at batches of
// 1000). When the proxy runs in this process, Config.Landing knows which
// versions are still being written: a read of such a version waits until
// the write returned (stored or not). Holding a read only makes it later
// than the core asked, which the core allows for every read (a read's
// snapshot is never earlier than its readAt), so no decision depends on
// it. A hold is bounded by the table's visibility window, by which the
// proxy's store write is over in any case.
//
// Once the write returned, a held read whose key it stored at the version
// the read must find, or newer, takes that row instead of reading it back
// (unless Config.ReadBackWrites): the row is durable (the store answered
// the write) and exactly what a read right after its commit shows, which
// saves the read's round trip and the store's work. It is marked Landed:
// its snapshot may be earlier than the read was asked for, so the core
// only publishes from it, and reads the store instead where a decision
// needs a snapshot no earlier than the request (core.go, ReadDone). Any
// other held read (the write failed, lost the key to a newer version, or
// holds an older one) goes to the store as before.
//
// A read that follows at once from the answer to the key's last read (the
// escalation to a stronger level after a replica read that did not cover
// the intents or failed; the store read in place of a handed-over row that
// published nothing), or retries a failed one, asks for the version that
// read asked for, not for the newest intent: that read is over (a held one
// was released when its write returned), and what follows it is for the
// state the store shows now. Asked for an intent logged meanwhile, it
// would be held again until that write returned: on a key written faster
// than its writes land, with a slow write (a batch that lands near the
// proxy's bound) among the newest each time, the reads of one round went
// from one slow write to the next, and writes that had landed long before
// waited for all of them. So between the first read of a key, a read after
// a backoff and one after an event, its reads are held for one version
// only, as long as the writes whose range holds it take.

// reread asks for a read of the key at level that follows at once from
// the answer to its last read, or retries it: for the version that read
// asked for (or less, if intents it needed were settled meanwhile).
func (c *Core) reread(now time.Time, ks *keyState, level int) {
	c.ask(now, ks, level, min(ks.asked, ks.newest()))
}

// landed says that the write behind a channel of held reads ended, or
// that the hold ran out (late).
type landed struct {
	w    *landing.Write
	late bool
}

// queueReads queues reads for the pool, holding those whose version is
// being written by the proxy of this process.
func (l *loop) queueReads(reqs []ReadRequest) {
	lg := l.r.cfg.Landing
	for _, rq := range reqs {
		var w *landing.Write
		if lg != nil && rq.Version != 0 && !rq.Probe {
			w = lg.Pending(l.table, rq.Version)
		}
		if w == nil {
			l.readQ = append(l.readQ, rq)
			continue
		}
		if _, waiting := l.held[w]; !waiting {
			go l.awaitLanding(w, l.holdBound())
		}
		l.held[w] = append(l.held[w], rq)
	}
}

// holdBound is the longest a read waits for a store write.
func (l *loop) holdBound() time.Duration { return max(l.def.VisibilityWindow, time.Second) }

// awaitLanding tells the loop when w ends or bound passes, whichever
// comes first; it gives up when the loop is gone.
func (l *loop) awaitLanding(w *landing.Write, bound time.Duration) {
	start := time.Now()
	t := time.NewTimer(bound)
	defer t.Stop()
	ld := landed{w: w}
	select {
	case <-w.Done():
	case <-t.C:
		ld.late = true
	case <-l.done:
		return
	}
	l.m.landingWait.Observe(time.Since(start).Seconds())
	select {
	case l.landed <- ld:
	case <-l.done:
	}
}

// release answers the reads held on a write that ended with the rows it
// stored, and queues the others (asking again: another write may hold
// their version too), or, after the bound, all of them.
func (l *loop) release(ld landed) {
	reqs := l.held[ld.w]
	delete(l.held, ld.w)
	if ld.late {
		l.m.heldBound.Add(float64(len(reqs)))
		l.readQ = append(l.readQ, reqs...)
		return
	}
	l.m.heldLanded.Add(float64(len(reqs)))
	if !l.r.cfg.ReadBackWrites {
		now := time.Now()
		rest := reqs[:0]
		for _, rq := range reqs {
			row, ok := ld.w.Row(rq.Key)
			if !ok || row.Version < rq.Version {
				rest = append(rest, rq)
				continue
			}
			l.m.handedOver.Inc()
			l.core.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Level: rq.Level, Row: row, Found: true, Landed: true})
		}
		reqs = rest
	}
	l.queueReads(reqs)
}
