package postgres

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
)

// Leases (store.Lease) live in wail__leases, one row per name, with times
// from the database's clock (clock_timestamp()), so expiry does not depend
// on the clocks of the processes that share the database.

const leaseTable = "wail__leases"

var (
	leaseIdent     = pgx.Identifier{leaseTable}.Sanitize()
	createLeaseSQL = `CREATE TABLE IF NOT EXISTS ` + leaseIdent + ` (
  name    text        PRIMARY KEY,
  holder  text        NOT NULL,
  host    text        NOT NULL,
  pid     integer     NOT NULL,
  since   timestamptz NOT NULL,
  renewed timestamptz NOT NULL,
  expires timestamptz NOT NULL
)`
	leaseCols = `holder, host, pid, since, renewed, expires`
	// claimLeaseSQL takes the row when it is absent, expired or ours.
	claimLeaseSQL = `INSERT INTO ` + leaseIdent + ` AS l (name, holder, host, pid, since, renewed, expires)
VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp(), clock_timestamp() + make_interval(secs => $5))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
  since = CASE WHEN l.holder = excluded.holder THEN l.since ELSE excluded.since END,
  renewed = excluded.renewed, expires = excluded.expires
WHERE l.holder = excluded.holder OR l.expires < clock_timestamp()
RETURNING ` + leaseCols
	renewLeaseSQL = `UPDATE ` + leaseIdent + ` SET renewed = clock_timestamp(), expires = clock_timestamp() + make_interval(secs => $3)
WHERE name = $1 AND holder = $2 RETURNING ` + leaseCols
)

func scanLease(name string, row pgx.Row) (store.Lease, error) {
	l := store.Lease{Name: name}
	err := row.Scan(&l.Holder, &l.Host, &l.PID, &l.Since, &l.Renewed, &l.Expires)
	return l, err
}

// ClaimLease takes name for l's holder for ttl when nobody holds it, the
// holder's lease expired, or it is already l's holder's. Otherwise it
// returns the holder's lease and store.ErrLeaseHeld.
func (s *Store) ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	got, err := s.claimLease(ctx, name, l, ttl)
	if err != nil {
		return got, fmt.Errorf("postgres: claim lease %s: %w", name, err)
	}
	return got, nil
}

func (s *Store) claimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if s.closed.Load() {
		return store.Lease{}, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.ddl(qctx, createLeaseSQL); err != nil {
		return store.Lease{}, s.classify(ctx, err)
	}
	for {
		got, err := scanLease(name, s.primary.QueryRow(qctx, claimLeaseSQL, name, l.Holder, l.Host, l.PID, ttl.Seconds()))
		if !errors.Is(err, pgx.ErrNoRows) {
			if err != nil {
				return store.Lease{}, s.classify(ctx, err)
			}
			return got, nil
		}
		held, found, err := s.leaseOf(qctx, name)
		if err != nil {
			return store.Lease{}, s.classify(ctx, err)
		}
		if found {
			return held, store.ErrLeaseHeld
		}
		// released between the two statements: claim again
	}
}

// RenewLease extends holder's lease on name by ttl from now; if the lease
// is no longer holder's, it returns the current one (if any) and
// store.ErrLeaseLost.
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	got, err := s.renewLease(ctx, name, holder, ttl)
	if err != nil {
		return got, fmt.Errorf("postgres: renew lease %s: %w", name, err)
	}
	return got, nil
}

func (s *Store) renewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if s.closed.Load() {
		return store.Lease{}, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	got, err := scanLease(name, s.primary.QueryRow(qctx, renewLeaseSQL, name, holder, ttl.Seconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		now, _, err := s.leaseOf(qctx, name)
		if err != nil {
			return store.Lease{}, s.classify(ctx, err)
		}
		return now, store.ErrLeaseLost
	}
	if err != nil {
		return store.Lease{}, s.classify(ctx, err)
	}
	return got, nil
}

// ReleaseLease gives name up if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: release lease %s: %w", name, store.ErrClosed)
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.primary.Exec(qctx, `DELETE FROM `+leaseIdent+` WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("postgres: release lease %s: %w", name, s.classify(ctx, err))
	}
	return nil
}

func (s *Store) leaseOf(ctx context.Context, name string) (store.Lease, bool, error) {
	l, err := scanLease(name, s.primary.QueryRow(ctx, `SELECT `+leaseCols+` FROM `+leaseIdent+` WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, false, nil
	}
	return l, err == nil, err
}
