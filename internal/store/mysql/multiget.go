package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.MultiGetter = (*Store)(nil)

// multiGetSQL reads the rows of keys (by their hashes, as literals).
func multiGetSQL(ident string, keys [][]byte) string {
	var q strings.Builder
	q.WriteString("SELECT k, value, version, deleted, schema_id FROM " + ident + " WHERE kh IN (")
	for i, k := range keys {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(hexLiteral(keyHash(k)))
	}
	q.WriteByte(')')
	return q.String()
}

// GetMany reads keys at level, one statement per sqlstore.MultiGetChunk
// distinct keys (see store.MultiGetter), each stopped by the server once
// the time ctx and the store's query timeout leave, less a margin, has run
// out (boundedRead).
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
	admitted, err := s.reps.Admit(level)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		admitted.Done(sqlstore.Unknown, nil) // read nothing: says nothing
	}
	ident := quote(tableName(table))
	read := func(chunk [][]byte, m *sqlstore.MultiRows) error {
		return s.readChunk(ctx, admitted, db, ident, chunk, m)
	}
	return sqlstore.ReadMany(keys, read, func(err error) error { return s.readErr(ctx, table, db != s.primary, err) })
}

// readChunk reads the rows of keys from db, the pool of admitted's level,
// into m, bounded inside the server.
func (s *Store) readChunk(ctx context.Context, admitted sqlstore.Read, db *sql.DB, ident string, keys [][]byte, m *sqlstore.MultiRows) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	q, err := s.boundedRead(qctx, multiGetSQL(ident, keys))
	if err != nil {
		admitted.Done(sqlstore.Unknown, nil) // not sent
		return err
	}
	err = s.read(qctx, db, q, func(rows *sql.Rows) error { return m.Scan(rows) })
	s.replicaDone(ctx, admitted, err)
	return err
}
