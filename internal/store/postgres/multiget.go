package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
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
// distinct keys (see store.MultiGetter). Each statement runs in a pgx
// batch after boundSQL, so PostgreSQL itself stops it (statement_timeout,
// lock_timeout) once the time ctx and the store's query timeout leave,
// less a margin, has run out.
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
	budget, err := sqlstore.Budget(qctx, time.Now())
	if err != nil {
		return fmt.Errorf("read not sent: %w", context.DeadlineExceeded)
	}
	hashes := make([][]byte, len(keys))
	for i, k := range keys {
		sum := sha256.Sum256(k)
		hashes[i] = sum[:]
	}
	batch := &pgx.Batch{}
	batch.Queue(boundSQL, strconv.FormatInt(max(budget.Milliseconds(), 1), 10))
	batch.Queue(multiGetSQL(ident), hashes)
	br := conn.SendBatch(qctx, batch)
	defer func() { _ = br.Close() }()
	rows, err := boundRows(br)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := m.Scan(rows); err != nil {
		return err
	}
	return br.Close()
}
