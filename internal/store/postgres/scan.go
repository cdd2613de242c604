package postgres

import (
	"context"
	endian "encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

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
// is bounded inside PostgreSQL by the caller's deadline and the store's
// query timeout, whichever comes first (boundQuery), so the database stops
// it too.
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
	conn, err := s.acquire(qctx, s.primary, "primary")
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	defer conn.Release()
	// Binary parameters: a bytea is its bytes (from is not nil: an empty
	// value, not NULL, for the first page), a bigint 8 bytes big-endian.
	p1, p2 := from, endian.BigEndian.AppendUint64(nil, uint64(limit))
	out := make([]store.KeyVersion, 0, min(limit, 1024))
	err = boundQuery(qctx, conn.Conn().PgConn(), named(conn.Conn()), scanSQL(tableIdent(table)), [][]byte{p1, p2}, []uint32{pgtype.ByteaOID, pgtype.Int8OID}, func(v [][]byte) error {
		if len(v) != 3 || len(v[1]) != 8 || len(v[2]) != 1 {
			return fmt.Errorf("a row of %d columns not as asked", len(v))
		}
		out = append(out, store.KeyVersion{Key: clone(v[0]), Version: endian.BigEndian.Uint64(v[1]), Deleted: v[2][0] != 0})
		return nil
	})
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	return out, nil
}
