package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
)

// Leases (store.Lease) live in wail__leases, one row per name, with times
// in microseconds by the database's clock, so expiry does not depend on
// the clocks of the processes that share the database (nor on the DSN's
// parseTime or time zone).

const (
	leaseTable  = "wail__leases"
	errDupEntry = 1062
	nowMicros   = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
	leaseCols   = "holder, host, pid, since_us, renewed_us, expires_us"
)

var createLeaseSQL = `CREATE TABLE IF NOT EXISTS ` + quote(leaseTable) + ` (
  name       VARCHAR(191) NOT NULL PRIMARY KEY,
  holder     VARCHAR(255) NOT NULL,
  host       VARCHAR(255) NOT NULL,
  pid        INT          NOT NULL,
  since_us   BIGINT       NOT NULL,
  renewed_us BIGINT       NOT NULL,
  expires_us BIGINT       NOT NULL
) ENGINE=InnoDB`

type rowScanner interface{ Scan(...any) error }

func scanLease(name string, row rowScanner) (store.Lease, error) {
	l := store.Lease{Name: name}
	var since, renewed, expires int64
	if err := row.Scan(&l.Holder, &l.Host, &l.PID, &since, &renewed, &expires); err != nil {
		return l, err
	}
	l.Since, l.Renewed, l.Expires = time.UnixMicro(since), time.UnixMicro(renewed), time.UnixMicro(expires)
	return l, nil
}

// ClaimLease takes name for l's holder for ttl when nobody holds it, the
// holder's lease expired, or it is already l's holder's. Otherwise it
// returns the holder's lease and store.ErrLeaseHeld.
func (s *Store) ClaimLease(ctx context.Context, name string, l store.Lease, ttl time.Duration) (store.Lease, error) {
	got, err := s.claimLease(ctx, name, l, ttl)
	if err != nil {
		return got, fmt.Errorf("mysql: claim lease %s: %w", name, err)
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
		got, err := s.claimOnce(qctx, name, l, ttl)
		var myErr *mysql.MySQLError
		if errors.As(err, &myErr) && (myErr.Number == errDupEntry || myErr.Number == errDeadlock) {
			continue // a concurrent claim came first: look again
		}
		if err != nil && !errors.Is(err, store.ErrLeaseHeld) {
			return store.Lease{}, s.classify(ctx, err)
		}
		return got, err
	}
}

// claimOnce is one transaction: lock the row, then insert, take over or
// report the holder.
func (s *Store) claimOnce(ctx context.Context, name string, l store.Lease, ttl time.Duration) (_ store.Lease, err error) {
	tx, err := s.primary.BeginTx(ctx, nil)
	if err != nil {
		return store.Lease{}, err
	}
	// Not waited for: Rollback takes no context (see end); after the
	// COMMIT it changes nothing.
	defer func() { go func() { _ = tx.Rollback() }() }()
	var now int64
	if err := tx.QueryRowContext(ctx, "SELECT "+nowMicros).Scan(&now); err != nil {
		return store.Lease{}, err
	}
	held, err := scanLease(name, tx.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM `+quote(leaseTable)+` WHERE name = ? FOR UPDATE`, name))
	expires := now + ttl.Microseconds()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO `+quote(leaseTable)+` (name, `+leaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			name, l.Holder, l.Host, l.PID, now, now, expires)
		l.Since = time.UnixMicro(now)
	case err != nil:
		return store.Lease{}, err
	case held.Holder == l.Holder || held.Expires.UnixMicro() < now:
		l.Since = time.UnixMicro(now)
		if held.Holder == l.Holder {
			l.Since = held.Since
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+quote(leaseTable)+` SET holder = ?, host = ?, pid = ?, since_us = ?, renewed_us = ?, expires_us = ? WHERE name = ?`,
			l.Holder, l.Host, l.PID, l.Since.UnixMicro(), now, expires, name)
	default:
		return held, store.ErrLeaseHeld
	}
	if err != nil {
		return store.Lease{}, err
	}
	if err := commit(ctx, tx); err != nil {
		return store.Lease{}, err
	}
	l.Name, l.Renewed, l.Expires = name, time.UnixMicro(now), time.UnixMicro(expires)
	return l, nil
}

// RenewLease extends holder's lease on name by ttl from now; if the lease
// is no longer holder's, it returns the current one (if any) and
// store.ErrLeaseLost.
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	got, err := s.renewLease(ctx, name, holder, ttl)
	if err != nil {
		return got, fmt.Errorf("mysql: renew lease %s: %w", name, err)
	}
	return got, nil
}

func (s *Store) renewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if s.closed.Load() {
		return store.Lease{}, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.primary.ExecContext(qctx, `UPDATE `+quote(leaseTable)+` SET renewed_us = `+nowMicros+`, expires_us = `+nowMicros+` + ?
WHERE name = ? AND holder = ?`, ttl.Microseconds(), name, holder)
	if err != nil {
		return store.Lease{}, s.classify(ctx, err)
	}
	cur, err := scanLease(name, s.primary.QueryRowContext(qctx, `SELECT `+leaseCols+` FROM `+quote(leaseTable)+` WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lease{}, store.ErrLeaseLost
	}
	if err != nil {
		return store.Lease{}, s.classify(ctx, err)
	}
	if cur.Holder != holder { // (RowsAffected would not tell: 0 also when nothing changed)
		return cur, store.ErrLeaseLost
	}
	return cur, nil
}

// ReleaseLease gives name up if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if s.closed.Load() {
		return fmt.Errorf("mysql: release lease %s: %w", name, store.ErrClosed)
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.primary.ExecContext(qctx, `DELETE FROM `+quote(leaseTable)+` WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("mysql: release lease %s: %w", name, s.classify(ctx, err))
	}
	return nil
}
