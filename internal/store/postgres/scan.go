package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.Scanner = (*Store)(nil)

// scanSQL lists a page of keys in primary-key order (kh, the SHA-256 of
// the key): an index range scan of at most $2 rows.
func scanSQL(ident string) string {
	return `SELECT key, version, deleted FROM ` + ident + ` WHERE kh > $1 ORDER BY kh LIMIT $2`
}

// ScanKeys lists up to limit keys of table after the key after, in the
// order of their SHA-256, from the primary (see store.Scanner). The query
// runs in a transaction whose statement_timeout is the store's query
// timeout, so the database stops it too.
func (s *Store) ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	out, err := s.scanKeys(ctx, table, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan %s: %w", table, err)
	}
	return out, nil
}

func (s *Store) scanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	from, err := sqlstore.ScanFrom(table, after, limit)
	if err != nil {
		return nil, err
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	out := make([]store.KeyVersion, 0, min(limit, 1024))
	err = pgx.BeginFunc(qctx, s.primary, func(tx pgx.Tx) error {
		ms := strconv.FormatInt(s.timeout.Milliseconds(), 10)
		if _, err := tx.Exec(qctx, "SELECT set_config('statement_timeout', $1, true)", ms); err != nil {
			return err
		}
		rows, err := tx.Query(qctx, scanSQL(tableIdent(table)), from, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kv store.KeyVersion
			var version int64
			if err := rows.Scan(&kv.Key, &version, &kv.Deleted); err != nil {
				return err
			}
			kv.Version = uint64(version)
			out = append(out, kv)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	return out, nil
}
