package mysql

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

const (
	// maxAttempts bounds the runs of a batch that lost a lock race.
	maxAttempts = 5
	// chunkRows bounds the rows of one statement (5 placeholders each,
	// well below the 65535 a prepared statement may have). Batches are
	// far smaller in practice; a larger one takes several statements in
	// its one transaction.
	chunkRows = 1000
)

// batch is a deduplicated Apply: one entry per distinct key, sorted by kh
// (the primary key, so concurrent batches lock rows in one order).
type batch struct {
	hashes   [][]byte
	keys     [][]byte
	values   [][]byte
	versions []int64
	deleted  []bool
	winner   []int          // per entry: index of the mutation that stands for the key
	slot     []int          // per mutation: its key's entry
	byHash   map[string]int // kh -> entry
}

// newBatch keeps, per key, the mutation with the highest version (on a tie
// the earliest), ordered by key hash (a stable lock order for concurrent
// batches).
func newBatch(muts []store.Mutation) (*batch, error) {
	winners, slot, err := sqlstore.Winners(muts)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(winners))
	order := make([]int, len(winners)) // positions in winners, by key hash
	for j, i := range winners {
		sum := sha256.Sum256(muts[i].Key)
		hashes[j], order[j] = sum[:], j
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(hashes[a], hashes[b]) })
	entryOf := make([]int, len(winners))
	b := &batch{slot: make([]int, len(muts)), byHash: make(map[string]int, len(winners))}
	for e, j := range order {
		entryOf[j] = e
		m := muts[winners[j]]
		value := m.Value
		if m.Delete || value == nil {
			value = []byte{} // NOT NULL
		}
		b.hashes = append(b.hashes, hashes[j])
		b.keys = append(b.keys, m.Key)
		b.values = append(b.values, value)
		b.versions = append(b.versions, int64(m.Version))
		b.deleted = append(b.deleted, m.Delete)
		b.winner = append(b.winner, winners[j])
		b.byHash[string(hashes[j])] = e
	}
	for i := range muts {
		b.slot[i] = entryOf[slot[i]]
	}
	return b, nil
}

// outcomes builds the result from which entries were applied and the
// versions stored afterwards.
func (b *batch) outcomes(muts []store.Mutation, applied []bool, stored []uint64) []store.Outcome {
	out := make([]store.Outcome, len(muts))
	for i, m := range muts {
		j := b.slot[i]
		if applied[j] && b.winner[j] == i {
			out[i] = store.Outcome{Applied: true, Current: m.Version}
			continue
		}
		cur := stored[j]
		if cur <= m.Version {
			cur = 0 // a version at or below m's cannot have beaten it: unknown
		}
		out[i] = store.Outcome{Current: cur}
	}
	return out
}

// upsertSQL is the conditional write of n rows (see the package comment).
func (s *Store) upsertSQL(ident string, n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + ident + " (kh, k, value, version, deleted) VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?)")
	}
	newer, val := "VALUES(version) > version", func(c string) string { return "VALUES(" + c + ")" }
	if s.dialect == DialectMySQL8 {
		q.WriteString(" AS new")
		newer, val = "new.version > version", func(c string) string { return "new." + c }
	}
	q.WriteString(" ON DUPLICATE KEY UPDATE" +
		" value = IF(" + newer + ", " + val("value") + ", value)," +
		" deleted = IF(" + newer + ", " + val("deleted") + ", deleted)," +
		" updated_at = IF(" + newer + ", CURRENT_TIMESTAMP(6), updated_at)," +
		" version = GREATEST(version, " + val("version") + ")") // last: the IFs read the old version
	return q.String()
}

// Apply writes muts conditionally (last writer wins on version); see the
// package comment for the statement and the transaction around it.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.apply(ctx, table, muts)
	if err != nil {
		return nil, fmt.Errorf("mysql: apply %s: %w", table, err)
	}
	return out, nil
}

func (s *Store) apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if store.ValidateTableName(table) != nil {
		return nil, store.ErrUnknownTable
	}
	if len(muts) == 0 {
		return []store.Outcome{}, nil
	}
	b, err := newBatch(muts)
	if err != nil {
		return nil, err
	}
	ident := quote(tableName(table))
	applied := make([]bool, len(b.keys))
	stored := make([]uint64, len(b.keys))
	for attempt := 1; ; attempt++ {
		err = s.applyTx(ctx, ident, b, applied, stored)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			break
		}
		s.log.Debug("mysql apply retried", "table", table, "attempt", attempt, "err", err)
		if err := sqlstore.Sleep(ctx, time.Duration(attempt)*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	return b.outcomes(muts, applied, stored), nil
}

// applyTx runs one batch in a transaction: read the versions, write,
// read them again under the write's locks.
func (s *Store) applyTx(ctx context.Context, ident string, b *batch, applied []bool, stored []uint64) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.primary.BeginTx(qctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	before := make([]int64, len(b.keys))
	if err := s.readVersions(qctx, tx, ident, b, "", before); err != nil {
		return err
	}
	for lo := 0; lo < len(b.keys); lo += chunkRows {
		hi := min(lo+chunkRows, len(b.keys))
		args := make([]any, 0, 5*(hi-lo))
		for j := lo; j < hi; j++ {
			args = append(args, b.hashes[j], b.keys[j], b.values[j], b.versions[j], b.deleted[j])
		}
		if _, err := tx.ExecContext(qctx, s.upsertSQL(ident, hi-lo), args...); err != nil {
			return err
		}
	}
	after := make([]int64, len(b.keys))
	if err := s.readVersions(qctx, tx, ident, b, " FOR UPDATE", after); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for j, v := range b.versions {
		// Holding v now, and not before: this batch wrote it (or a writer
		// with the very same version did, which is the same write).
		applied[j] = after[j] == v && before[j] != v
		stored[j] = uint64(after[j])
	}
	return nil
}

// readVersions fills versions[j] with the stored version of entry j (-1
// when absent).
func (s *Store) readVersions(ctx context.Context, tx *sql.Tx, ident string, b *batch, suffix string, versions []int64) error {
	for j := range versions {
		versions[j] = -1
	}
	for lo := 0; lo < len(b.keys); lo += chunkRows {
		hi := min(lo+chunkRows, len(b.keys))
		args := make([]any, 0, hi-lo)
		for j := lo; j < hi; j++ {
			args = append(args, b.hashes[j])
		}
		q := "SELECT kh, version FROM " + ident + " WHERE kh IN (?" + strings.Repeat(",?", hi-lo-1) + ")" + suffix
		if err := scanVersions(ctx, tx, q, args, b, versions); err != nil {
			return err
		}
	}
	return nil
}

func scanVersions(ctx context.Context, tx *sql.Tx, q string, args []any, b *batch, versions []int64) error {
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
		if j, ok := b.byHash[string(kh)]; ok {
			versions[j] = v
		}
	}
	return rows.Err()
}

// tableErr classifies err and forgets a table the primary no longer has.
func (s *Store) tableErr(ctx context.Context, table string, err error) error {
	err = s.classify(ctx, err)
	if errors.Is(err, store.ErrUnknownTable) {
		s.remember(table, false)
		s.dropStmts(table)
	}
	return err
}

// Get reads key at level: replicas first, the primary last.
func (s *Store) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	row, found, err := s.get(ctx, table, key, level)
	if err != nil {
		return store.Row{}, false, fmt.Errorf("mysql: get %s: %w", table, err)
	}
	return row, found, nil
}

func (s *Store) get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if s.closed.Load() {
		return store.Row{}, false, store.ErrClosed
	}
	db, err := s.pool(level)
	if err != nil {
		return store.Row{}, false, err
	}
	if store.ValidateTableName(table) != nil {
		return store.Row{}, false, store.ErrUnknownTable
	}
	kh := sha256.Sum256(key)
	if key == nil {
		key = []byte{}
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row store.Row
	var version int64
	st, err := s.getStmt(qctx, db, level, table)
	if err == nil {
		err = st.QueryRowContext(qctx, kh[:], key).Scan(&row.Value, &version, &row.Deleted)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Row{}, false, nil
	case err != nil && db != s.primary:
		return s.replicaErr(ctx, table, err)
	case err != nil:
		return store.Row{}, false, s.tableErr(ctx, table, err)
	}
	row.Version = uint64(version)
	if row.Deleted {
		row.Value = nil
	} else if row.Value == nil {
		row.Value = []byte{}
	}
	return row, true, nil
}

// replicaErr: a replica that has not applied a table's creation yet lacks
// the table, but the table exists: to that replica every key is not found.
func (s *Store) replicaErr(ctx context.Context, table string, err error) (store.Row, bool, error) {
	err = s.classify(ctx, err)
	if !errors.Is(err, store.ErrUnknownTable) {
		return store.Row{}, false, err
	}
	exists, perr := s.existsOnPrimary(ctx, table)
	switch {
	case perr != nil:
		return store.Row{}, false, perr
	case exists:
		return store.Row{}, false, nil
	}
	return store.Row{}, false, err
}
