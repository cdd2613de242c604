package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// maxAttempts bounds the retries of a batch that lost a deadlock.
const maxAttempts = 5

func applySQL(ident string) string {
	return `INSERT INTO ` + ident + ` AS t (key, value, version, deleted, schema_id, doc)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bool[], $5::bigint[], $6::text[]::jsonb[])
ON CONFLICT (kh) DO UPDATE
   SET value = excluded.value, version = excluded.version, deleted = excluded.deleted, updated_at = now(),
       schema_id = excluded.schema_id, doc = excluded.doc
 WHERE t.version < excluded.version
RETURNING key`
}

func versionsSQL(ident string) string {
	return `SELECT key, version FROM ` + ident + `
 WHERE kh IN (SELECT sha256(k) FROM unnest($1::bytea[]) AS u(k))`
}

// boundSQL bounds the statement after it, in the same implicit
// transaction of a batch: set_config(..., true) is local to the
// transaction, and PostgreSQL arms statement_timeout for each statement
// of a pipeline as it starts, with the value set then.
const boundSQL = `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)`

// Apply writes muts conditionally (last writer wins on version); see the
// package comment for the statement and the bound on it. Errors wrap
// store.ErrNotApplied when the write did not commit for sure.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.apply(ctx, table, muts)
	if err != nil {
		return nil, fmt.Errorf("postgres: apply %s: %w", table, err)
	}
	return out, nil
}

func (s *Store) apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, store.ErrClosed)
	}
	if store.ValidateTableName(table) != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, store.ErrUnknownTable)
	}
	if len(muts) == 0 {
		return []store.Outcome{}, nil
	}
	b, err := sqlstore.NewBatch(muts, nil) // sorted by key
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	ident := tableIdent(table)
	applied := make([]bool, len(b.Keys))
	retry := sqlstore.Retry{Attempts: maxAttempts, Retryable: retryable, Retried: func(attempt int, err error) {
		s.log.Debug("postgres apply retried", "table", table, "attempt", attempt, "err", err)
	}}
	write := func() error {
		clear(applied) // of a run that failed
		return s.applyOnce(ctx, ident, b, applied)
	}
	if err := retry.Run(ctx, write, func(err error) error { return s.writeErr(ctx, table, err) }); err != nil {
		return nil, err
	}
	stored := make([]uint64, len(b.Keys))
	if slices.Contains(applied, false) {
		if err := s.storedVersions(ctx, ident, b, applied, stored); err != nil {
			// The write committed, and RETURNING said which mutations
			// won: only the versions they lost to are unknown, which
			// Current may leave at 0. An error here would tell every
			// write of the batch "outcome unknown, write again".
			s.log.Debug("postgres: the write committed; reading the versions it lost to failed", "table", table, "err", err)
			clear(stored)
		}
	}
	return b.Outcomes(muts, applied, stored), nil
}

// applyOnce runs the statement, bounded inside PostgreSQL by ctx's
// deadline (see sqlstore.Budget), and marks the entries RETURNING names.
// It is one round trip (boundQuery): boundSQL, then the statement, parsed
// after the bound, in one implicit transaction. A statement prepared by
// pgx (its statement cache) is parsed in a round trip of its own before,
// the first time on each connection, and PostgreSQL's parse takes the
// table's lock: behind another session's ACCESS EXCLUSIVE lock it waited
// with no bound but the session's, and the budget, taken before, then
// gave the INSERT its whole time from when it started, past ctx's
// deadline (TestWriteBoundAfterPrepare). In pgx's default mode the
// statement is named, prepared in the bounded round trip the first time
// on the connection and planned once (TestWritesPreparedOnce); otherwise
// unnamed.
func (s *Store) applyOnce(ctx context.Context, ident string, b *sqlstore.Batch, applied []bool) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := s.acquire(qctx, s.primary, "primary")
	if err != nil {
		return notSent{err}
	}
	defer conn.Release()
	params, err := applyParams(conn.Conn().TypeMap(), b)
	if err != nil {
		return notSent{err}
	}
	// The bound is taken once a connection is at hand (in boundQuery):
	// the time spent waiting for one does not count against the
	// database's budget.
	return boundQuery(qctx, conn.Conn().PgConn(), named(conn.Conn()), applySQL(ident), params, applyOIDs, func(row [][]byte) error {
		if len(row) != 1 {
			return fmt.Errorf("a row of %d columns not as asked", len(row))
		}
		if j, ok := b.Find(row[0]); ok {
			applied[j] = true
		}
		return nil
	})
}

// applyOIDs are the types of applySQL's parameters.
var applyOIDs = []uint32{pgtype.ByteaArrayOID, pgtype.ByteaArrayOID, pgtype.Int8ArrayOID, pgtype.BoolArrayOID, pgtype.Int8ArrayOID, pgtype.TextArrayOID}

// applyParams encodes the columns of b as applySQL's parameters, in the
// binary format.
func applyParams(m *pgtype.Map, b *sqlstore.Batch) ([][]byte, error) {
	values := []any{b.Keys, b.Values, b.Versions, b.Deleted, b.SchemaIDs, jsonbDocs(b.Docs)}
	params := make([][]byte, len(values))
	for i, v := range values {
		p, err := m.Encode(applyOIDs[i], pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			return nil, fmt.Errorf("encode parameter %d: %w", i+1, err)
		}
		params[i] = p
	}
	return params, nil
}

// binary returns n binary format codes.
func binary(n int) []int16 {
	f := make([]int16, n)
	for i := range f {
		f[i] = pgtype.BinaryFormatCode
	}
	return f
}

// jsonbDocs returns docs with those jsonb cannot store (the escape
// \u0000, which protojson writes for a NUL in a string) as NULL.
func jsonbDocs(docs []*string) []*string {
	var out []*string
	for i, d := range docs {
		if d != nil && hasNULEscape(*d) {
			if out == nil {
				out = slices.Clone(docs)
			}
			out[i] = nil
		}
	}
	if out == nil {
		return docs
	}
	return out
}

// hasNULEscape reports whether the JSON text doc has the escape \u0000
// in a string: an escaped backslash followed by "u0000" is not one.
func hasNULEscape(doc string) bool {
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' || i+1 >= len(doc) {
			continue
		}
		if doc[i+1] == 'u' && strings.HasPrefix(doc[i+2:], "0000") {
			return true
		}
		i++ // the escaped character
	}
	return false
}

// KeepsDocuments implements store.DocumentStore: the doc column.
func (s *Store) KeepsDocuments() bool { return true }

// storedVersions reads the current versions of the entries not applied.
func (s *Store) storedVersions(ctx context.Context, ident string, b *sqlstore.Batch, applied []bool, stored []uint64) error {
	var keys [][]byte
	for j, ok := range applied {
		if !ok {
			keys = append(keys, b.Keys[j])
		}
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(qctx, versionsSQL(ident), keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		var version int64
		if err := rows.Scan(&key, &version); err != nil {
			return err
		}
		if j, ok := b.Find(key); ok {
			stored[j] = uint64(version)
		}
	}
	return rows.Err()
}

// tableErr classifies err and forgets a table the primary no longer has.
func (s *Store) tableErr(ctx context.Context, table string, err error) error {
	err = s.classify(ctx, err)
	if errors.Is(err, store.ErrUnknownTable) {
		s.tables.Forget(table)
	}
	return err
}

// Get reads key at level: replicas first, the primary last.
func (s *Store) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	row, found, err := s.get(ctx, table, key, level)
	if err != nil {
		return store.Row{}, false, fmt.Errorf("postgres: get %s: %w", table, err)
	}
	return row, found, nil
}

func (s *Store) get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	p, err := sqlstore.ReadPool(s.closed.Load(), table, level, s.primary, s.replicas)
	if err != nil {
		return store.Row{}, false, err
	}
	read, err := s.reps.Admit(level)
	if err != nil {
		return store.Row{}, false, err
	}
	s.awaitReplica(ctx, level)
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	conn, err := s.acquire(qctx, p, s.levelName(p))
	if err != nil {
		s.replicaDone(ctx, read, err)
		return store.Row{}, false, s.readErr(ctx, table, p != s.primary, err)
	}
	defer conn.Release()
	var value []byte
	var version int64
	var deleted bool
	var schemaID int64
	err = conn.QueryRow(qctx, `SELECT value, version, deleted, schema_id FROM `+tableIdent(table)+
		` WHERE kh = sha256($1) AND key = $1`, sqlstore.NotNull(key)).Scan(&value, &version, &deleted, &schemaID)
	s.replicaDone(ctx, read, err)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Row{}, false, nil
	case err != nil:
		return store.Row{}, false, s.readErr(ctx, table, p != s.primary, err)
	}
	return sqlstore.Row(value, version, deleted, schemaID), true, nil
}

// readErr classifies the error of a read of table, at a replica or the
// primary.
func (s *Store) readErr(ctx context.Context, table string, replica bool, err error) error {
	if replica {
		// nil: the replica has not replayed the table's creation yet.
		return s.replicaErr(ctx, table, err)
	}
	return s.tableErr(ctx, table, err)
}

// replicaErr classifies the error of a read at a replica (see
// sqlstore.ReplicaErr: one that has not replayed a table's creation yet
// answers "not found").
func (s *Store) replicaErr(ctx context.Context, table string, err error) error {
	return sqlstore.ReplicaErr(s.classify(ctx, err), func() (bool, error) { return s.existsOnPrimary(ctx, table) })
}

// replicaDone tells the breaker of the replica of level (a no-op at the
// primary) what read, which sqlstore.Replicas.Admit let through, found, err
// (nil or pgx.ErrNoRows: it answered), and logs the breaker opening and
// closing.
func (s *Store) replicaDone(ctx context.Context, read sqlstore.Read, err error) {
	level := read.Level()
	if level < 0 || int(level) >= len(s.replicas) {
		return
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	var pgErr *pgconn.PgError
	race := retryable(err) || errors.As(err, &pgErr) && pgErr.Code == codeLockNotAvailable
	opened, closed := read.Done(sqlstore.ReadOutcome(ctx, err, s.classify(ctx, err), race), err)
	switch {
	case opened:
		s.log.Warn("postgres: replica does not answer; its reads go to the next level (the primary at the end) until a probe read answers: check the replica's host and the network to it",
			"level", s.levels[level], "addr", s.reps.Addr(int(level)), "err", err)
	case closed:
		s.log.Info("postgres: replica answers again; reading it", "level", s.levels[level], "addr", s.reps.Addr(int(level)))
	}
}
