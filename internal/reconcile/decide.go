package reconcile

import (
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// Verdict is what reconcile makes of one key.
type Verdict int

// Verdicts.
const (
	// UpToDate: the bus holds an event at or above the stored version,
	// the store does not have the key, or (a compacted bus that lost
	// nothing to time retention) the store has it deleted and the bus has
	// no record of it.
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
	case f.Deleted && f.Compacted && f.RetainedSince.IsZero():
		// Compaction removes a record only once a later one of its key
		// is on the bus, and a tombstone after delete.retention.ms; with
		// nothing lost to time retention, no record at all means the
		// key's last record was a tombstone (its delete was published) or
		// it never had one. Either way a consumer sees it deleted, as the
		// store does. (Not on the embedded log, which does not compact:
		// there, no record with nothing lost means never published.)
		return UpToDate
	case f.Deleted && f.Compacted:
		// Time retention (compact,delete) may have removed the key's only
		// upsert while its delete was never published, or compaction its
		// published delete: which one is unknown.
		return Expired
	case !f.RetainedSince.IsZero() && hlc.Time(f.Version).Before(f.RetainedSince.Add(clockSkew)):
		return Expired // its event may have been published before the retained records
	}
	return Behind
}
