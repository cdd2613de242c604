package postgres

import (
	"context"
	"crypto/sha256"
	endian "encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

var _ store.MultiGetter = (*Store)(nil)

// multiGetSQL reads the rows of a set of key hashes: an index scan of the
// primary key per hash.
func multiGetSQL(ident string) string {
	return `SELECT key, value, version, deleted, schema_id FROM ` + ident + ` WHERE kh = ANY($1::bytea[])`
}

// GetMany reads keys at level in one round trip per sqlstore.MultiGetChunk
// distinct keys (see store.MultiGetter). Each statement runs in a pipeline
// after boundSQL (boundQuery), so PostgreSQL itself stops it
// (statement_timeout, lock_timeout) once the time ctx and the store's
// query timeout leave, less a margin, has run out.
func (s *Store) GetMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	reads, err := s.getMany(ctx, table, keys, level)
	if err != nil {
		return nil, fmt.Errorf("postgres: get many %s: %w", table, err)
	}
	return reads, nil
}

func (s *Store) getMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	p, err := sqlstore.ReadPool(s.closed.Load(), table, level, s.primary, s.replicas)
	if err != nil {
		return nil, err
	}
	admitted, err := s.reps.Admit(level)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		s.awaitReplica(ctx, level)
	}
	if len(keys) == 0 {
		admitted.Done(sqlstore.Unknown, nil) // read nothing: says nothing
	}
	ident := tableIdent(table)
	read := func(chunk [][]byte, m *sqlstore.MultiRows) error {
		err := s.readChunk(ctx, p, ident, chunk, m)
		s.replicaDone(ctx, admitted, err)
		return err
	}
	return sqlstore.ReadMany(keys, read, func(err error) error { return s.readErr(ctx, table, p != s.primary, err) })
}

// readChunk reads the rows of keys from p into m, bounded inside the
// server.
func (s *Store) readChunk(ctx context.Context, p *pgxpool.Pool, ident string, keys [][]byte, m *sqlstore.MultiRows) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := s.acquire(qctx, p, s.levelName(p))
	if err != nil {
		return err
	}
	defer conn.Release()
	hashes := make([][]byte, len(keys))
	for i, k := range keys {
		sum := sha256.Sum256(k)
		hashes[i] = sum[:]
	}
	param, err := conn.Conn().TypeMap().Encode(pgtype.ByteaArrayOID, pgtype.BinaryFormatCode, hashes, nil)
	if err != nil {
		return err
	}
	return boundQuery(qctx, conn.Conn().PgConn(), named(conn.Conn()), multiGetSQL(ident), [][]byte{param}, []uint32{pgtype.ByteaArrayOID}, func(v [][]byte) error {
		if len(v) != 5 || len(v[2]) != 8 || len(v[3]) != 1 || len(v[4]) != 8 {
			return fmt.Errorf("a row of %d columns not as asked", len(v))
		}
		m.Found(clone(v[0]), clone(v[1]), int64(endian.BigEndian.Uint64(v[2])), v[3][0] != 0, int64(endian.BigEndian.Uint64(v[4])))
		return nil
	})
}

// clone returns a copy of b (not nil).
func clone(b []byte) []byte { return append([]byte{}, b...) }
