package store

import (
	"errors"
	"time"
)

// Leases: a store that several processes share (the SQL stores) keeps
// named leases, so that a process can claim a name for itself (a proxy its
// proxy id) and learn who else holds it. Expiry is by the store's clock.
var (
	// ErrLeaseHeld: another holder's lease on the name has not expired.
	ErrLeaseHeld = errors.New("lease held by another process")
	// ErrLeaseLost: the lease is no longer the caller's (it expired and
	// another process claimed it, or it was released).
	ErrLeaseLost = errors.New("lease lost")
)

// Lease is who holds a name, and until when.
type Lease struct {
	Name string
	// Holder identifies one claim: unique per process (host, pid and a
	// random part).
	Holder string
	Host   string
	PID    int
	// Since is when this holder first claimed the name; Renewed its last
	// renewal; Expires when it lapses unless renewed (the store's clock).
	Since, Renewed, Expires time.Time
}
