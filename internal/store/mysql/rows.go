package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

const (
	// maxAttempts bounds the runs of a batch that lost a lock race.
	maxAttempts = 5
	// chunkRows bounds the rows of one statement (7 placeholders each,
	// well below the 65535 a prepared statement may have). Batches are
	// far smaller in practice; a larger one takes several statements in
	// its one transaction.
	chunkRows = 1000
)

// keyHash is the primary key of a row (kh): the SHA-256 of its key. It is
// a batch's lock key (Batch.LockKeys holds kh), so concurrent batches lock
// rows in one order.
func keyHash(key []byte) []byte {
	sum := sha256.Sum256(key)
	return sum[:]
}

// upsertSQL is the conditional write of n rows (see the package comment).
func (s *Store) upsertSQL(ident string, n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + ident + " (kh, k, value, version, deleted, schema_id, doc) VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?)")
	}
	newer, val := "VALUES(version) > version", func(c string) string { return "VALUES(" + c + ")" }
	if s.dialect == DialectMySQL8 {
		q.WriteString(" AS new")
		newer, val = "new.version > version", func(c string) string { return "new." + c }
	}
	q.WriteString(" ON DUPLICATE KEY UPDATE" +
		" value = IF(" + newer + ", " + val("value") + ", value)," +
		" schema_id = IF(" + newer + ", " + val("schema_id") + ", schema_id)," +
		" doc = IF(" + newer + ", " + val("doc") + ", doc)," +
		" deleted = IF(" + newer + ", " + val("deleted") + ", deleted)," +
		" updated_at = IF(" + newer + ", CURRENT_TIMESTAMP(6), updated_at)," +
		" version = GREATEST(version, " + val("version") + ")") // last: the IFs read the old version
	return q.String()
}

// KeepsDocuments implements store.DocumentStore: the doc column.
func (s *Store) KeepsDocuments() bool { return true }

// Apply writes muts conditionally (last writer wins on version); see the
// package comment for the statement, the transaction around it and the
// bound on it. Errors wrap store.ErrNotApplied when the write did not
// commit for sure: every error before the COMMIT was sent.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.apply(ctx, table, muts)
	if err != nil {
		return nil, fmt.Errorf("mysql: apply %s: %w", table, err)
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
	b, err := sqlstore.NewBatch(muts, keyHash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	ident := quote(tableName(table))
	applied := make([]bool, len(b.Keys))
	stored := make([]uint64, len(b.Keys))
	retry := sqlstore.Retry{Attempts: maxAttempts, Retryable: retryable, Retried: func(attempt int, err error) {
		s.log.Debug("mysql apply retried", "table", table, "attempt", attempt, "err", err)
	}}
	write := func() error { return s.applyTx(ctx, ident, b, applied, stored) }
	if err := retry.Run(ctx, write, func(err error) error { return s.writeErr(ctx, table, err) }); err != nil {
		return nil, err
	}
	return b.Outcomes(muts, applied, stored), nil
}

// writeErr classifies the error of a write (see tableErr) and wraps
// store.ErrNotApplied unless the COMMIT was sent.
func (s *Store) writeErr(ctx context.Context, table string, err error) error {
	classified := s.tableErr(ctx, table, err)
	var unknown commitErr
	if errors.As(err, &unknown) {
		return classified
	}
	return fmt.Errorf("%w: %w", store.ErrNotApplied, classified)
}

// commitErr is an error of the COMMIT: the transaction may have committed.
type commitErr struct{ err error }

func (e commitErr) Error() string { return "commit: " + e.err.Error() }
func (e commitErr) Unwrap() error { return e.err }

// applyTx runs one batch in a transaction: read the versions, write,
// read them again under the write's locks. The write is bounded inside
// the server by ctx's deadline (see sqlstore.Budget and bound). Nothing
// commits before the COMMIT, which is sent only while ctx has time left:
// every error before it means the write did not happen.
//
// The transaction is statements on a connection of its own, not a
// database/sql Tx: a Tx rolls back by itself once its context ends, and
// then hands its connection back to the pool before end could restore
// the session.
func (s *Store) applyTx(ctx context.Context, ident string, b *sqlstore.Batch, applied []bool, stored []uint64) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.conn(qctx, s.primary, "primary")
	if err != nil {
		return err
	}
	open, reset := true, false // reset: a MySQL 8 bound set the session's lock wait
	defer func() { end(tx, open, reset) }()
	if _, err := tx.ExecContext(qctx, "START TRANSACTION"); err != nil {
		return err
	}
	before := make([]int64, len(b.Keys))
	if err := s.readVersions(qctx, tx, ident, b, "", before); err != nil {
		return err
	}
	for lo := 0; lo < len(b.Keys); lo += chunkRows {
		hi := min(lo+chunkRows, len(b.Keys))
		args := make([]any, 0, 7*(hi-lo))
		for j := lo; j < hi; j++ {
			args = append(args, b.LockKeys[j], b.Keys[j], b.Values[j], b.Versions[j], b.Deleted[j], b.SchemaIDs[j], b.Docs[j])
		}
		bounded, set, err := s.bound(qctx, tx, s.upsertSQL(ident, hi-lo), !reset)
		reset = reset || set
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(qctx, bounded, args...); err != nil {
			return err
		}
	}
	after := make([]int64, len(b.Keys))
	if err := s.readVersions(qctx, tx, ident, b, " FOR UPDATE", after); err != nil {
		return err
	}
	if err := qctx.Err(); err != nil {
		return err // the COMMIT is not sent
	}
	if err := commit(qctx, tx); err != nil {
		return commitErr{err}
	}
	open = false
	for j, v := range b.Versions {
		// Holding v now, and not before: this batch wrote it (or a writer
		// with the very same version did, which is the same write).
		applied[j] = after[j] == v && before[j] != v
		stored[j] = uint64(after[j])
	}
	return nil
}

// commit commits tx within ctx. database/sql's Tx.Commit takes no
// context, and the driver then waits for the COMMIT's answer for as long
// as the connection lives: a server stalled in its commit (fsync, a
// semi-sync replica) or a lost answer held the write far past its
// deadline, and a late answer reported it stored after the proxy's share
// of the visibility window. Sent as a statement with ctx, the driver
// closes the connection when ctx ends: the outcome is then unknown.
func commit(ctx context.Context, tx querier) error {
	_, err := tx.ExecContext(ctx, "COMMIT")
	return err
}

// querier runs statements: a database/sql Tx, or a Conn.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// endTimeout bounds end's statements.
const endTimeout = 5 * time.Second

// end hands a write's connection back to the pool without making the
// write wait: a failed write must not wait for its ROLLBACK, whose answer
// a stalled server, or a host gone without resetting the connection,
// holds back for as long as the connection lives (the write had already
// failed, e.g. stopped by its bound inside the server). With open it rolls
// the transaction back. With reset it restores the session's
// innodb_lock_wait_timeout, which a MySQL 8 bound set, so that the next
// user of the connection (a lease claim, a catalog swap) does not inherit
// a write's lock wait. A statement that fails or times out makes the
// driver close the connection instead of pooling it.
func end(conn *sql.Conn, open, reset bool) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
		defer cancel()
		var err error
		if open {
			_, err = conn.ExecContext(ctx, "ROLLBACK")
		}
		if reset && err == nil {
			_, err = conn.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = @wail_lock_wait")
		}
		if err != nil {
			// Not pooled: its session is not known to be clean.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()
}

// bound returns the write statement q bounded by the time ctx has left
// (sqlstore.Budget): on MariaDB with SET STATEMENT max_statement_time and
// innodb_lock_wait_timeout for q alone; MySQL 8 has no statement timeout
// for writes, so it sets the session's innodb_lock_wait_timeout (whole
// seconds, rounded up) before q, which bounds its lock waits only: set
// says so, and the caller restores it (end).
func (s *Store) bound(ctx context.Context, tx querier, q string, save bool) (_ string, set bool, _ error) {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil || budget == 0 {
		return q, false, err
	}
	lockWait := int64(math.Ceil(budget.Seconds()))
	if s.dialect == DialectMySQL8 {
		set := "SET SESSION innodb_lock_wait_timeout = " + strconv.FormatInt(lockWait, 10)
		if save { // the session's own value (the server's, or the DSN's), which end restores
			set = "SET @wail_lock_wait = @@SESSION.innodb_lock_wait_timeout, SESSION innodb_lock_wait_timeout = " + strconv.FormatInt(lockWait, 10)
		}
		_, err := tx.ExecContext(ctx, set)
		return q, true, err
	}
	// At least a millisecond: max_statement_time=0 is no limit at all.
	secs := max(budget, time.Millisecond).Seconds()
	return fmt.Sprintf("SET STATEMENT max_statement_time=%.6f, innodb_lock_wait_timeout=%d FOR %s", secs, lockWait, q), false, nil
}

// readVersions fills versions[j] with the stored version of entry j (-1
// when absent).
func (s *Store) readVersions(ctx context.Context, tx querier, ident string, b *sqlstore.Batch, suffix string, versions []int64) error {
	for j := range versions {
		versions[j] = -1
	}
	for lo := 0; lo < len(b.Keys); lo += chunkRows {
		hi := min(lo+chunkRows, len(b.Keys))
		args := make([]any, 0, hi-lo)
		for j := lo; j < hi; j++ {
			args = append(args, b.LockKeys[j])
		}
		q := "SELECT kh, version FROM " + ident + " WHERE kh IN (?" + strings.Repeat(",?", hi-lo-1) + ")" + suffix
		if err := scanVersions(ctx, tx, q, args, b, versions); err != nil {
			return err
		}
	}
	return nil
}

func scanVersions(ctx context.Context, tx querier, q string, args []any, b *sqlstore.Batch, versions []int64) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var kh []byte
		var v int64
		if err := rows.Scan(&kh, &v); err != nil {
			return err
		}
		if j, ok := b.Find(kh); ok {
			versions[j] = v
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

// Get reads key at level: replicas first, the primary last. Like GetMany
// it is one query in the text protocol, with its key as a literal and the
// bound of the time ctx and the store's query timeout leave inside the
// server (read.go).
func (s *Store) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	row, found, err := s.get(ctx, table, key, level)
	if err != nil {
		return store.Row{}, false, fmt.Errorf("mysql: get %s: %w", table, err)
	}
	return row, found, nil
}

func (s *Store) get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	db, err := sqlstore.ReadPool(s.closed.Load(), table, level, s.primary, s.replicas)
	if err != nil {
		return store.Row{}, false, err
	}
	read, err := s.reps.Admit(level)
	if err != nil {
		return store.Row{}, false, err
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var value []byte
	var version int64
	var deleted bool
	var schemaID int64
	q, err := s.boundedRead(qctx, "SELECT value, version, deleted, schema_id FROM "+quote(tableName(table))+
		" WHERE kh = "+hexLiteral(keyHash(key))+" AND k = "+hexLiteral(key))
	if err == nil {
		err = s.read(qctx, db, q, func(rows *sql.Rows) error { return scanRow(rows, &value, &version, &deleted, &schemaID) })
		s.replicaDone(ctx, read, err)
	} else {
		read.Done(sqlstore.Unknown, nil) // not sent
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Row{}, false, nil
	case err != nil:
		return store.Row{}, false, s.readErr(ctx, table, db != s.primary, err)
	}
	return sqlstore.Row(value, version, deleted, schemaID), true, nil
}

// readErr classifies the error of a read of table, at a replica or the
// primary.
func (s *Store) readErr(ctx context.Context, table string, replica bool, err error) error {
	if replica {
		// nil: the replica has not applied the table's creation yet.
		return s.replicaErr(ctx, table, err)
	}
	return s.tableErr(ctx, table, err)
}

// replicaErr classifies the error of a read at a replica (see
// sqlstore.ReplicaErr: one that has not applied a table's creation yet
// answers "not found").
func (s *Store) replicaErr(ctx context.Context, table string, err error) error {
	return sqlstore.ReplicaErr(s.classify(ctx, err), func() (bool, error) { return s.existsOnPrimary(ctx, table) })
}

// replicaDone tells the breaker of the replica of level (a no-op at the
// primary) what read, which sqlstore.Replicas.Admit let through, found, err
// (nil or sql.ErrNoRows: it answered), and logs the breaker opening and
// closing.
func (s *Store) replicaDone(ctx context.Context, read sqlstore.Read, err error) {
	level := read.Level()
	if level < 0 || int(level) >= len(s.replicas) {
		return
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	opened, closed := read.Done(sqlstore.ReadOutcome(ctx, err, s.classify(ctx, err), retryable(err)), err)
	switch {
	case opened:
		s.log.Warn("mysql: replica does not answer; its reads go to the next level (the primary at the end) until a probe read answers: check the replica's host and the network to it",
			"level", s.levels[level], "addr", s.reps.Addr(int(level)), "err", err)
	case closed:
		s.log.Info("mysql: replica answers again; reading it", "level", s.levels[level], "addr", s.reps.Addr(int(level)))
	}
}
