package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// A drop of a table checks that the catalog still holds the entry it
// removes and only then drops the table (DropTableIf); MySQL's and
// MariaDB's DDL commits on its own, so the check and the DROP cannot be
// one transaction. Both run under a lock of the table's name (GET_LOCK,
// held by the session), which CreateTable takes too: a table of the name
// made again since the check (after its new entry was saved, which the
// check would have seen) cannot exist before the DROP ends.

// tableLockName is the lock of a wail table's name: lock names are the
// server's, not a database's, so the database's name is in it, hashed to
// fit the 64 characters a lock name may have.
const (
	tableLockName   = `CONCAT('wail_', LEFT(SHA2(CONCAT(DATABASE(), '.', ?), 256), 48))`
	tableLockSQL    = `SELECT GET_LOCK(` + tableLockName + `, ?)`
	tableReleaseSQL = `SELECT RELEASE_LOCK(` + tableLockName + `)`
	releaseTimeout  = 5 * time.Second
)

// underTableLock runs f on a connection of the primary that holds the lock
// of table's name, waiting for it at most the time ctx has left (at least
// a second). The connection is discarded, not pooled, if the lock cannot
// be let go: the lock ends with its session.
func (s *Store) underTableLock(ctx context.Context, table string, f func(conn *sql.Conn) error) error {
	conn, err := s.primary.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return err
	}
	wait := max(int64(math.Ceil(budget.Seconds())), 1)
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, tableLockSQL, table, wait).Scan(&got); err != nil {
		return err
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("%w: the lock of table %s's name is held (another process creates or drops it)", store.ErrUnavailable, table)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if _, err := conn.ExecContext(rctx, tableReleaseSQL, table); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return f(conn)
}

// DropTableIf implements store.FencedDropper: under the lock of table's
// name, it reads the catalog entry on the primary and drops the table
// only if the entry holds spec.
func (s *Store) DropTableIf(ctx context.Context, table string, spec []byte) (bool, error) {
	dropped, err := s.dropTableIf(ctx, table, spec)
	if err != nil {
		return false, fmt.Errorf("mysql: drop table %s: %w", table, err)
	}
	return dropped, nil
}

func (s *Store) dropTableIf(ctx context.Context, table string, spec []byte) (bool, error) {
	if err := store.ValidateTableName(table); err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, store.ErrClosed
	}
	var dropped bool
	err := s.tables.Drop(table, func() error {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		err := s.underTableLock(qctx, table, func(conn *sql.Conn) error {
			var cur []byte
			err := conn.QueryRowContext(qctx, `SELECT spec FROM `+quote(catalogTable)+` WHERE name = ?`, table).Scan(&cur)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return nil
			case err != nil:
				return err
			case !bytes.Equal(sqlstore.NotNull(cur), sqlstore.NotNull(spec)):
				return nil
			}
			q, err := s.boundDDL(qctx, `DROP TABLE IF EXISTS `+quote(tableName(table)))
			if err != nil {
				return err
			}
			if _, err := conn.ExecContext(qctx, q); err != nil {
				return err
			}
			dropped = true
			return nil
		})
		if err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
	return dropped, err
}
