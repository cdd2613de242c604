package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.MultiGetter = (*Store)(nil)

// multiGetSQL reads the rows of n key hashes, stopped by the server after
// timeoutMs (as scanSQL).
func (s *Store) multiGetSQL(ident string, n int, timeoutMs int64) string {
	return s.boundedSelect("SELECT k, value, version, deleted, schema_id FROM "+ident+" WHERE kh IN (?"+strings.Repeat(",?", n-1)+")", timeoutMs)
}

// GetMany reads keys at level, one statement per sqlstore.MultiGetChunk
// distinct keys (see store.MultiGetter), each stopped by the server once
// the time ctx and the store's query timeout leave, less a margin, has run
// out.
func (s *Store) GetMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	reads, err := s.getMany(ctx, table, keys, level)
	if err != nil {
		return nil, fmt.Errorf("mysql: get many %s: %w", table, err)
	}
	return reads, nil
}

func (s *Store) getMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	db, err := sqlstore.ReadPool(s.closed.Load(), table, level, s.primary, s.replicas)
	if err != nil {
		return nil, err
	}
	ident := quote(tableName(table))
	read := func(chunk [][]byte, m *sqlstore.MultiRows) error { return s.readChunk(ctx, db, ident, chunk, m) }
	return sqlstore.ReadMany(keys, read, func(err error) error { return s.readErr(ctx, table, db != s.primary, err) })
}

func (s *Store) readChunk(ctx context.Context, db *sql.DB, ident string, keys [][]byte, m *sqlstore.MultiRows) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	budget, err := sqlstore.Budget(qctx, time.Now())
	if err != nil {
		return fmt.Errorf("read not sent: %w", context.DeadlineExceeded)
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = keyHash(k)
	}
	rows, err := db.QueryContext(qctx, s.multiGetSQL(ident, len(keys), max(budget.Milliseconds(), 1)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return m.Scan(rows)
}
