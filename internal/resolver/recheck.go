package resolver

// Rechecks: a second look at intents that expired unmaterialized.
//
// The visibility window is a promise about the store: a write the proxy
// made commits, and shows, before the window ends (DESIGN.md, "Ambiguous
// store writes"). The last quarter of the window is the slack for
// what no deadline inside the database bounds: the commit itself (a WAL
// flush, an fsync) and the delay before a statement starts at the server.
// A write whose commit stalls longer (a disk that stops for seconds, a
// database starved of CPU) shows after the resolver has given up on its
// intent: the store then holds a version that has no event, and the last
// event of the key is not the store's state.
//
// With Params.Recheck set, an intent whose window ended stays, reported
// unmaterialized, and its key is read once more at the strongest level
// Recheck windows later. A state that covers the intent and is newer than
// the key's last event is published then, as any read's would be (its
// version is durable, newer than every event of the key); an older one
// resolves the intent for good. The
// intent holds the commit until its recheck, so a crash meanwhile starts
// it over. New intents of the key are read as usual meanwhile, and an
// event that covers the version settles the recheck too.

import "time"

// recheckLater turns an intent whose window ended into one waiting for its
// recheck, unless it already was one, or the read that found it missing
// was asked late enough to be the recheck itself (always so with rechecks
// off: the recheck is then due at the deadline, which the read was asked
// after).
func (c *Core) recheckLater(ks *keyState, p *pending) bool {
	if p.recheck {
		return false
	}
	window := p.deadline.Sub(p.slot.seen)
	at := p.deadline.Add(time.Duration(float64(window) * c.p.Recheck))
	if !ks.readAt.Before(at) {
		return false
	}
	p.recheck, p.deadline = true, at
	return true
}

// rechecksOnly reports whether every intent of the key that needs an event
// waits for its recheck, and when the first one is due.
func (ks *keyState) rechecksOnly() (time.Time, bool) {
	var at time.Time
	for i := range ks.pending {
		p := &ks.pending[i]
		if !p.needs {
			continue
		}
		if !p.recheck {
			return time.Time{}, false
		}
		if at.IsZero() || p.deadline.Before(at) {
			at = p.deadline
		}
	}
	return at, !at.IsZero()
}

func rechecking(ks *keyState) bool {
	_, ok := ks.rechecksOnly()
	return ok
}

// rechecked reports the intents reported unmaterialized whose own version
// an event of version v, now durable, carries: their writes committed
// after the window.
// (One that a newer write covers may never have landed.)
func (c *Core) rechecked(ks *keyState, covered []pending, v uint64) {
	var vs []uint64
	for i := range covered {
		if covered[i].recheck && covered[i].version == v {
			vs = append(vs, covered[i].version)
		}
	}
	if len(vs) > 0 {
		c.out.Rechecked = append(c.out.Rechecked, Unmaterialized{Key: ks.key, Versions: vs})
	}
}
