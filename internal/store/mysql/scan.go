package mysql

import (
	"context"
	"fmt"
	"strconv"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.Scanner = (*Store)(nil)

// scanSQL lists a page of keys in primary-key order (kh, the SHA-256 of
// the key): an index range scan of at most ? rows, which the server stops
// after timeoutMs (MariaDB: SET STATEMENT max_statement_time; MySQL: the
// MAX_EXECUTION_TIME hint).
func (s *Store) scanSQL(ident string, timeoutMs int64) string {
	return s.boundedSelect("SELECT k, version, deleted FROM "+ident+" WHERE kh > ? ORDER BY kh LIMIT ?", timeoutMs)
}

// boundedSelect makes the server stop the SELECT q after timeoutMs.
func (s *Store) boundedSelect(q string, timeoutMs int64) string {
	if s.mariadb {
		secs := strconv.FormatFloat(float64(timeoutMs)/1000, 'f', 3, 64)
		return "SET STATEMENT max_statement_time=" + secs + " FOR " + q
	}
	return "SELECT /*+ MAX_EXECUTION_TIME(" + strconv.FormatInt(timeoutMs, 10) + ") */" + q[len("SELECT"):]
}

// ScanKeys lists up to limit keys of table after the key after, in the
// order of their SHA-256, from the primary (see store.Scanner).
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
	rows, err := s.primary.QueryContext(qctx, s.scanSQL(quote(tableName(table)), s.timeout.Milliseconds()), from, limit)
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	defer rows.Close()
	out := make([]store.KeyVersion, 0, min(limit, 1024))
	for rows.Next() {
		var kv store.KeyVersion
		var version int64
		if err := rows.Scan(&kv.Key, &version, &kv.Deleted); err != nil {
			return nil, s.tableErr(ctx, table, err)
		}
		kv.Version = uint64(version)
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	return out, nil
}
