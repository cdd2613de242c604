package cassandra

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// Leases (store.Lease; a proxy leases its proxy id) live in wail__leases,
// one row per name. They use lightweight transactions, as the catalog's
// swaps do (catalog.go): a claim must be decided once for all contenders
// (Paxos, at SERIAL: across data centers), while the writes of rows need
// none. Times
// come from the coordinator's clock (toTimestamp(now()) inside the
// statements), so expiry does not depend on the clocks of the processes.
// A release marks the row free (empty holder, expired) instead of deleting
// it: no tombstone, so gc_grace_seconds 0 is safe here too. A claim, renew
// or release is two to four Paxos round trips; a proxy renews every third
// of proxy.lease_ttl.

const leaseTable = "wail__leases"

// ensureLeases creates the lease table once per store (lazily: most
// stores of tests never lease).
func (s *Store) ensureLeases(ctx context.Context) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.leasesReady {
		return nil
	}
	err := s.ensureTable(ctx, leaseTable, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (name text PRIMARY KEY, holder text, host text, pid int, "+
		"since timestamp, renewed timestamp, expires timestamp) WITH ID = %s AND gc_grace_seconds = 0", s.ks, leaseTable, tableID(s.ks, leaseTable)))
	s.leasesReady = err == nil
	return err
}

// casTries bounds the attempts of one lightweight transaction, or of a
// read at SERIAL, that times out (Paxos contention: proposers for one
// name retry until cas_contention_timeout, then the outcome is unknown).
const casTries = 8

// paxos runs op, again after a jittered backoff while it times out. The
// statements here are safe to repeat, and the callers read the lease back
// (at SERIAL, which finishes any Paxos round in progress) to learn what
// happened, so an attempt that applied and timed out shows as the
// caller's own lease.
//
// Each attempt runs with ctx carrying the coordinators the attempts
// before it went to (withTried), and starts at another one: an attempt
// cut short at its coordinator (stalled, overloaded) is tried again
// elsewhere, not on the plan that led to it again (a key's plan starts at
// the same replica two times in three, or always: hostPolicy).
func (s *Store) paxos(ctx context.Context, op func(ctx context.Context) error) error {
	ctx = withTried(ctx)
	var err error
	for try := range casTries {
		if err = op(ctx); err == nil {
			return nil
		}
		if err = s.classify(ctx, err); !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		if try < casTries-1 {
			if err := backoff(ctx, try); err != nil {
				return err
			}
		}
	}
	return err
}

// backoff waits before try+1 of a contended Paxos round: 5ms doubling,
// jittered.
func backoff(ctx context.Context, try int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(5<<try)*time.Millisecond + time.Duration(rand.Int64N(int64(10*time.Millisecond)))):
		return nil
	}
}

// cas runs a lightweight transaction; applied says whether it took effect.
func (s *Store) cas(ctx context.Context, stmt string, args ...any) (applied bool, err error) {
	err = s.paxos(ctx, func(ctx context.Context) (err error) {
		applied, err = s.session.Query(stmt, args...).WithContext(ctx).Consistency(gocql.Quorum).
			SerialConsistency(gocql.Serial).MapScanCAS(map[string]any{})
		return err
	})
	return applied, err
}

// lease reads name's lease at SERIAL (what Paxos decided last).
func (s *Store) lease(ctx context.Context, name string) (store.Lease, bool, error) {
	l := store.Lease{Name: name}
	err := s.paxos(ctx, func(ctx context.Context) error {
		err := s.session.Query(fmt.Sprintf("SELECT holder, host, pid, since, renewed, expires FROM %s.%s WHERE name = ?", s.ks, leaseTable), name).
			WithContext(ctx).Consistency(gocql.Consistency(gocql.Serial)).Scan(&l.Holder, &l.Host, &l.PID, &l.Since, &l.Renewed, &l.Expires)
		if errors.Is(err, gocql.ErrNotFound) {
			l = store.Lease{Name: name}
			return nil
		}
		return err
	})
	if err != nil {
		return l, false, err
	}
	return l, l.Holder != "", nil
}

func ttlArg(ttl time.Duration) gocql.Duration { return gocql.Duration{Nanoseconds: ttl.Nanoseconds()} }

// ClaimLease takes name for l's holder for ttl when nobody holds it, the
// holder's lease expired (by the coordinator's clock), or it is already
// l's holder's (since is kept). Otherwise it returns the holder's lease
// and store.ErrLeaseHeld.
func (s *Store) ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	got, err := s.claimLease(ctx, name, l, ttl)
	if err != nil {
		return got, fmt.Errorf("cassandra: claim lease %s: %w", name, err)
	}
	return got, nil
}

func (s *Store) claimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.checkOpen(); err != nil {
		return store.Lease{}, err
	}
	if err := s.ensureLeases(ctx); err != nil {
		return store.Lease{}, err
	}
	t := s.ks + "." + leaseTable
	for {
		applied, err := s.cas(ctx, "INSERT INTO "+t+" (name, holder, host, pid, since, renewed, expires) "+
			"VALUES (?, ?, ?, ?, toTimestamp(now()), toTimestamp(now()), toTimestamp(now()) + (duration) ?) IF NOT EXISTS",
			name, l.Holder, l.Host, l.PID, ttlArg(ttl))
		if err != nil {
			return store.Lease{}, err
		}
		if !applied {
			cur, _, err := s.lease(ctx, name)
			if err != nil {
				return store.Lease{}, err
			}
			if cur.Holder == l.Holder { // ours: renew, since kept
				applied, err = s.cas(ctx, "UPDATE "+t+" SET renewed = toTimestamp(now()), expires = toTimestamp(now()) + (duration) ? "+
					"WHERE name = ? IF holder = ?", ttlArg(ttl), name, l.Holder)
			} else { // free (released) or expired: take it
				applied, err = s.cas(ctx, "UPDATE "+t+" SET holder = ?, host = ?, pid = ?, since = toTimestamp(now()), renewed = toTimestamp(now()), "+
					"expires = toTimestamp(now()) + (duration) ? WHERE name = ? IF expires < toTimestamp(now())",
					l.Holder, l.Host, l.PID, ttlArg(ttl), name)
			}
			if err != nil {
				return store.Lease{}, err
			}
		}
		cur, found, err := s.lease(ctx, name)
		switch {
		case err != nil:
			return store.Lease{}, err
		case applied && cur.Holder == l.Holder:
			return cur, nil
		case found && cur.Holder != l.Holder:
			return cur, store.ErrLeaseHeld
		}
		// Released, or ours lost and claimed again, in between: once more.
		if err := ctx.Err(); err != nil {
			return store.Lease{}, err
		}
	}
}

// RenewLease extends holder's lease on name by ttl from now; if the lease
// is no longer holder's, it returns the current one (if any) and
// store.ErrLeaseLost.
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	got, err := s.renewLease(ctx, name, holder, ttl)
	if err != nil {
		return got, fmt.Errorf("cassandra: renew lease %s: %w", name, err)
	}
	return got, nil
}

func (s *Store) renewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.checkOpen(); err != nil {
		return store.Lease{}, err
	}
	if err := s.ensureLeases(ctx); err != nil {
		return store.Lease{}, err
	}
	applied, err := s.cas(ctx, "UPDATE "+s.ks+"."+leaseTable+" SET renewed = toTimestamp(now()), expires = toTimestamp(now()) + (duration) ? "+
		"WHERE name = ? IF holder = ?", ttlArg(ttl), name, holder)
	if err != nil {
		return store.Lease{}, err
	}
	cur, _, err := s.lease(ctx, name)
	switch {
	case err != nil:
		return store.Lease{}, err
	case !applied || cur.Holder != holder:
		return cur, store.ErrLeaseLost
	}
	return cur, nil
}

// ReleaseLease gives name up if holder holds it (the row is marked free
// and expired); otherwise it does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("cassandra: release lease %s: %w", name, err)
	}
	if err := s.ensureLeases(ctx); err != nil {
		return fmt.Errorf("cassandra: release lease %s: %w", name, err)
	}
	if _, err := s.cas(ctx, "UPDATE "+s.ks+"."+leaseTable+" SET holder = '', expires = ? WHERE name = ? IF holder = ?",
		time.Unix(0, 0), name, holder); err != nil {
		return fmt.Errorf("cassandra: release lease %s: %w", name, err)
	}
	return nil
}
