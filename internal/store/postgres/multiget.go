package postgres

import (
	"context"
	"crypto/sha256"
	endian "encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
// distinct keys (see store.MultiGetter). Each statement runs in a batch
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
	if err := s.reps.Err(level); err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		s.awaitReplica(ctx, level)
	}
	ident := tableIdent(table)
	read := func(chunk [][]byte, m *sqlstore.MultiRows) error { return s.readChunk(ctx, p, ident, chunk, m) }
	return sqlstore.ReadMany(keys, read, func(err error) error { return s.readErr(ctx, table, p != s.primary, err) })
}

// readChunk reads the rows of keys from p into m, bounded inside the
// server.
func (s *Store) readChunk(ctx context.Context, p *pgxpool.Pool, ident string, keys [][]byte, m *sqlstore.MultiRows) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := p.Acquire(qctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	hashes := make([][]byte, len(keys))
	for i, k := range keys {
		sum := sha256.Sum256(k)
		hashes[i] = sum[:]
	}
	if conn.Conn().Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		return readPrepared(qctx, conn.Conn(), ident, hashes, m)
	}
	param, err := conn.Conn().TypeMap().Encode(pgtype.ByteaArrayOID, pgtype.BinaryFormatCode, hashes, nil)
	if err != nil {
		return err
	}
	return boundQuery(qctx, conn.Conn().PgConn(), multiGetSQL(ident), [][]byte{param}, []uint32{pgtype.ByteaArrayOID}, func(v [][]byte) error {
		if len(v) != 5 || len(v[2]) != 8 || len(v[3]) != 1 || len(v[4]) != 8 {
			return fmt.Errorf("a row of %d columns not as asked", len(v))
		}
		m.Found(clone(v[0]), clone(v[1]), int64(endian.BigEndian.Uint64(v[2])), v[3][0] != 0, int64(endian.BigEndian.Uint64(v[4])))
		return nil
	})
}

// readPrepared is readChunk on a connection that prepares what it runs
// (pgx's default, cache_statement): a prepared statement per table,
// planned once, where an unnamed one is planned at every read (2.4 times
// the time per key at 100 keys: docs/benchmarks.md). A statement is
// prepared before the batch runs, so its first read's wait for the
// table's lock is bounded by ctx, not inside PostgreSQL.
func readPrepared(ctx context.Context, conn *pgx.Conn, ident string, hashes [][]byte, m *sqlstore.MultiRows) error {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("read not sent: %w", context.DeadlineExceeded)
	}
	batch := &pgx.Batch{}
	batch.Queue(boundSQL, strconv.FormatInt(max(budget.Milliseconds(), 1), 10))
	batch.Queue(multiGetSQL(ident), hashes)
	br := conn.SendBatch(ctx, batch)
	defer func() { _ = br.Close() }()
	if _, err := br.Exec(); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := m.Scan(rows); err != nil {
		return err
	}
	return br.Close()
}

// boundQuery runs query (parameters params, of types oids, in the binary
// format) on conn, bounded inside PostgreSQL by ctx's deadline (see
// sqlstore.Budget), and calls row with the columns of each row (binary
// format; valid during the call). As applyOnce: one round trip, a batch
// (one implicit transaction) of boundSQL and query, both unnamed
// statements parsed in the batch, after the bound, so no prepared
// statement is left on the connection and the parse's wait for the
// table's lock counts against the bound.
func boundQuery(ctx context.Context, conn *pgconn.PgConn, query string, params [][]byte, oids []uint32, row func([][]byte) error) error {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("read not sent: %w", context.DeadlineExceeded)
	}
	batch := &pgconn.Batch{}
	batch.ExecParams(boundSQL, [][]byte{[]byte(strconv.FormatInt(max(budget.Milliseconds(), 1), 10))}, []uint32{pgtype.TextOID}, nil, nil)
	batch.ExecParams(query, params, oids, binary(len(oids)), binary(1))
	mrr := conn.ExecBatch(ctx, batch)
	var ferr error
	for i := 0; mrr.NextResult(); i++ {
		rr := mrr.ResultReader()
		for rr.NextRow() {
			if i == 1 && ferr == nil {
				ferr = row(rr.Values())
			}
		}
		if _, err := rr.Close(); err != nil {
			_ = mrr.Close()
			return err
		}
	}
	if err := mrr.Close(); err != nil {
		return err
	}
	return ferr
}

// clone returns a copy of b (not nil).
func clone(b []byte) []byte { return append([]byte{}, b...) }
