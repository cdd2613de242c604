package reconcile

import (
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// Verdict is what reconcile makes of one key.
type Verdict int

// Verdicts.
const (
	// UpToDate: the bus holds an event at or above the stored version, or
	// the store does not have the key.
	UpToDate Verdict = iota
	// InFlight: the intent of the stored version is still unresolved (it
	// was logged after the resolvers caught up): the resolver publishes it,
	// or dead-letters it.
	InFlight
	// Expired: the key has no event left on the bus, and retention or
	// compaction may have removed the one it had; reconcile leaves it
	// alone rather than publish a version twice.
	Expired
	// Behind: the stored version is newer than the key's last event and
	// nothing will publish it: reconcile logs an intent.
	Behind
	// Unreadable: the store could not read the key (Key.Err says why):
	// nothing was decided or logged for it.
	Unreadable
)

func (v Verdict) String() string {
	switch v {
	case UpToDate:
		return "up to date"
	case InFlight:
		return "in flight"
	case Expired:
		return "expired"
	case Behind:
		return "behind"
	case Unreadable:
		return "unreadable"
	}
	return "verdict?"
}

// clockSkew is how far the append time of an event may be behind the
// time of the version it carries (proxy and bus clocks differ).
const clockSkew = time.Minute

// Facts are what reconcile knows of one key when it decides.
type Facts struct {
	// Found, Version and Deleted are the key's state in the store, read
	// at the strongest level after the bus was scanned.
	Found   bool
	Version uint64
	Deleted bool
	// LastEvent is the key's highest version on the bus (0: none).
	LastEvent uint64
	// Pending: an intent with exactly the stored version was logged after
	// the resolvers caught up (it is being resolved).
	Pending bool
	// RetainedSince: events published before it may have been removed by
	// retention (zero: the bus partition lost nothing to retention).
	RetainedSince time.Time
	// Compacted: the bus compacts (Kafka), so a deleted key's delete event
	// and tombstone can be gone.
	Compacted bool
}

// Decide is reconcile's decision for one key. It is the whole policy:
// everything else is I/O.
func Decide(f Facts) Verdict {
	switch {
	case !f.Found || f.Version <= f.LastEvent:
		return UpToDate
	case f.Pending:
		return InFlight
	case f.LastEvent > 0:
		// The bus keeps a key's last event (compaction keeps the last
		// record, and time retention removes older records first), so an
		// older last event means the stored version was never published.
		return Behind
	case f.Deleted && f.Compacted:
		return Expired // the delete was published and compacted away, or the key never had an event
	case !f.RetainedSince.IsZero() && hlc.Time(f.Version).Before(f.RetainedSince.Add(clockSkew)):
		return Expired // its event may have been published before the retained records
	}
	return Behind
}
