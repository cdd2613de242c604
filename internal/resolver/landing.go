package resolver

import "time"

// Reads held until the store write they must find has landed.
//
// The proxy writes the store only once the intent is durable, and a merged
// batch of a thousand writes takes tens of milliseconds more to land; a
// read issued after the first-read delay alone mostly finds the old row
// and is repeated with backoff (1.2-2.8 reads per event at batches of
// 1000). When the proxy runs in this process, Config.Landing knows which
// versions are still being written: a read of such a version waits until
// the write returned (stored or not), then goes to the store as any read.
// Holding a read only makes it later than the core asked, which the core
// allows for every read (a read's snapshot is never earlier than its
// readAt), so no decision depends on it. A hold is bounded by the table's
// visibility window, by which the proxy's store write is over in any case.

// landed says that the write behind a channel of held reads ended, or
// that the hold ran out (late).
type landed struct {
	ch   <-chan struct{}
	late bool
}

// queueReads queues reads for the pool, holding those whose version is
// being written by the proxy of this process.
func (l *loop) queueReads(reqs []ReadRequest) {
	lg := l.r.cfg.Landing
	for _, rq := range reqs {
		var ch <-chan struct{}
		if lg != nil && rq.Version != 0 {
			ch = lg.Pending(l.table, rq.Version)
		}
		if ch == nil {
			l.readQ = append(l.readQ, rq)
			continue
		}
		if _, waiting := l.held[ch]; !waiting {
			go l.awaitLanding(ch, l.holdBound())
		}
		l.held[ch] = append(l.held[ch], rq)
	}
}

// holdBound is the longest a read waits for a store write.
func (l *loop) holdBound() time.Duration { return max(l.def.VisibilityWindow, time.Second) }

// awaitLanding tells the loop when ch closes or bound passes, whichever
// comes first; it gives up when the loop is gone.
func (l *loop) awaitLanding(ch <-chan struct{}, bound time.Duration) {
	start := time.Now()
	t := time.NewTimer(bound)
	defer t.Stop()
	ld := landed{ch: ch}
	select {
	case <-ch:
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

// release queues the reads held on a write that ended (asking again:
// another write may hold their version too), or, after the bound, all
// of them.
func (l *loop) release(ld landed) {
	reqs := l.held[ld.ch]
	delete(l.held, ld.ch)
	if ld.late {
		l.m.heldBound.Add(float64(len(reqs)))
		l.readQ = append(l.readQ, reqs...)
		return
	}
	l.m.heldLanded.Add(float64(len(reqs)))
	l.queueReads(reqs)
}
