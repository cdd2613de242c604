package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.Scanner = (*Store)(nil)

// scanSQL lists a page of keys in primary-key order (kh, the SHA-256 of
// the key): an index range scan of at most limit rows after from.
func scanSQL(ident string, from []byte, limit int) string {
	return "SELECT k, version, deleted FROM " + ident + " WHERE kh > " + hexLiteral(from) + " ORDER BY kh LIMIT " + strconv.Itoa(limit)
}

// ScanKeys lists up to limit keys of table after the key after, in the
// order of their SHA-256, from the primary (see store.Scanner), stopped
// by the server once the time ctx and the store's query timeout leave,
// less a margin, has run out (boundedRead).
func (s *Store) ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	out, err := s.scanKeys(ctx, table, after, limit)
	if err != nil {
		return nil, fmt.Errorf("mysql: scan %s: %w", table, err)
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
	q, err := s.boundedRead(qctx, scanSQL(quote(tableName(table)), from, limit))
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	out := make([]store.KeyVersion, 0, min(limit, 1024))
	err = s.read(qctx, s.primary, q, func(rows *sql.Rows) error {
		out = out[:0] // a try again starts over
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
