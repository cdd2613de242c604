package resolver

import (
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// Intents of reconcile and redrive that come late.
//
// Reconcile (and redrive) logs an intent with published_floor = the key's
// last version on the bus when it scanned it. Resolving it publishes the
// key's state S only if S is above the key's last published version, which
// the core takes as max(what it remembers, the floor). That is safe only
// while the core remembers every event published after that scan: the
// fence before the scan makes it so for an intent logged within a quarter
// dedupe horizon of the fence, ingested promptly (DESIGN.md, "Redrive and
// reconcile"). An append that took longer (a Kafka append in flight
// minutes after its caller gave up lands all the same) can reach a core
// that forgot, past the horizon, an event published after the scan: S is
// that event's version, above the floor, and would go to the bus twice.
//
// The core knows from when it remembers (Core.since: the recovery's scan
// of the bus, then the horizon's evictions). An intent with a floor logged
// more than three quarters of a horizon after that (so a quarter horizon
// or more before what the core has seen since) is late: its events since
// the scan are at most a quarter horizon plus the proxies' append bound
// and clock skew older than the intent. A late intent is resolved as any
// other (an event the core remembers may cover it; a write's intent
// pending with it asks for its own event), but never publishes on its own:
// a read that only it needs published goes to the dead-letter queue
// instead, where `wail dlq redrive` resolves the key again, safely.

// lateAfter is how long after a reconcile or redrive intent was logged the
// core may have started remembering before it is late, as a share of the
// horizon.
const lateAfter = 4 // 1/4 of the horizon: see above

// RememberSince tells a new core that it remembers the events published
// from t on (in version time): those its recovery scanned the bus for.
func (c *Core) RememberSince(t time.Time) {
	if t.After(c.since) {
		c.since = t
	}
}

// late reports whether a reconcile or redrive intent came late (see the
// top of this file).
func (c *Core) late(in *intent.Intent) bool {
	if in.PublishedFloor == 0 || c.p.Horizon <= 0 {
		return false
	}
	return c.since.After(in.CreatedAt.Add(-c.p.Horizon + c.p.Horizon/lateAfter))
}

func allLate(ps []pending) bool {
	for _, p := range ps {
		if !p.late {
			return false
		}
	}
	return true
}

// letterLate dead-letters late intents that a read found to need an event.
func (c *Core) letterLate(now time.Time, ks *keyState, ps []pending) {
	oldest := ps[0].created
	for _, p := range ps {
		if p.created.Before(oldest) {
			oldest = p.created
		}
	}
	ks.fail.err = fmt.Sprintf("an intent of reconcile or redrive logged at %s reached the resolver after it could forget the key's events published since (it remembers those from %s on; an append to the intent log that took minutes): "+
		"publishing the key's state could repeat a version on the bus. Redrive this letter (`wail dlq redrive`) to resolve the key again",
		oldest.UTC().Format(time.RFC3339Nano), c.since.UTC().Format(time.RFC3339Nano))
	ks.fail.first, ks.fail.last = now, now
	c.deadLetter(ks, LetterRead, ps)
}
