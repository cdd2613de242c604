package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// maxAttempts bounds the retries of a batch that lost a deadlock.
const maxAttempts = 5

// batch is a deduplicated Apply: one entry per distinct key, sorted by key
// (so concurrent batches lock rows in one order), as parallel arrays.
type batch struct {
	keys     [][]byte
	values   [][]byte
	versions []int64
	deleted  []bool
	winner   []int // per entry: index of the mutation that stands for the key
	slot     []int // per mutation: its key's entry
}

// newBatch keeps, per key, the mutation with the highest version (on a tie
// the earliest), ordered by key (a stable lock order for concurrent batches).
func newBatch(muts []store.Mutation) (*batch, error) {
	winners, slot, err := sqlstore.Winners(muts)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(winners)) // positions in winners, by key
	for j := range order {
		order[j] = j
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(muts[winners[a]].Key, muts[winners[b]].Key) })
	entryOf := make([]int, len(winners))
	b := &batch{slot: make([]int, len(muts))}
	for e, j := range order {
		entryOf[j] = e
		m := muts[winners[j]]
		value := m.Value
		if m.Delete || value == nil {
			value = []byte{} // NOT NULL; a nil element would be sent as NULL
		}
		b.keys = append(b.keys, m.Key)
		b.values = append(b.values, value)
		b.versions = append(b.versions, int64(m.Version))
		b.deleted = append(b.deleted, m.Delete)
		b.winner = append(b.winner, winners[j])
	}
	for i := range muts {
		b.slot[i] = entryOf[slot[i]]
	}
	return b, nil
}

// outcomes builds the result from which entries were applied and the
// versions stored for the others (0 when unknown).
func (b *batch) outcomes(muts []store.Mutation, applied []bool, stored []uint64) []store.Outcome {
	out := make([]store.Outcome, len(muts))
	for i, m := range muts {
		j := b.slot[i]
		cur := stored[j]
		if applied[j] {
			if b.winner[j] == i {
				out[i] = store.Outcome{Applied: true, Current: m.Version}
				continue
			}
			cur = uint64(b.versions[j])
		}
		if cur <= m.Version {
			cur = 0 // a version at or below m's cannot have beaten it: unknown
		}
		out[i] = store.Outcome{Current: cur}
	}
	return out
}

func applySQL(ident string) string {
	return `INSERT INTO ` + ident + ` AS t (key, value, version, deleted)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bool[])
ON CONFLICT (kh) DO UPDATE
   SET value = excluded.value, version = excluded.version, deleted = excluded.deleted, updated_at = now()
 WHERE t.version < excluded.version
RETURNING key`
}

func versionsSQL(ident string) string {
	return `SELECT key, version FROM ` + ident + `
 WHERE kh IN (SELECT sha256(k) FROM unnest($1::bytea[]) AS u(k))`
}

// Apply writes muts conditionally (last writer wins on version); see the
// package comment for the statement.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.apply(ctx, table, muts)
	if err != nil {
		return nil, fmt.Errorf("postgres: apply %s: %w", table, err)
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
	ident := tableIdent(table)
	applied := make([]bool, len(b.keys))
	for attempt := 1; ; attempt++ {
		err = s.applyOnce(ctx, ident, b, applied)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			break
		}
		s.log.Debug("postgres apply retried", "table", table, "attempt", attempt, "err", err)
		clear(applied)
		if err := sqlstore.Sleep(ctx, time.Duration(attempt)*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, s.tableErr(ctx, table, err)
	}
	stored := make([]uint64, len(b.keys))
	if slices.Contains(applied, false) {
		if err := s.storedVersions(ctx, ident, b, applied, stored); err != nil {
			return nil, s.tableErr(ctx, table, err)
		}
	}
	return b.outcomes(muts, applied, stored), nil
}

// applyOnce runs the statement and marks the entries RETURNING names.
func (s *Store) applyOnce(ctx context.Context, ident string, b *batch, applied []bool) error {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(qctx, applySQL(ident), b.keys, b.values, b.versions, b.deleted)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			return err
		}
		if j, ok := b.find(key); ok {
			applied[j] = true
		}
	}
	return rows.Err()
}

// storedVersions reads the current versions of the entries not applied.
func (s *Store) storedVersions(ctx context.Context, ident string, b *batch, applied []bool, stored []uint64) error {
	var keys [][]byte
	for j, ok := range applied {
		if !ok {
			keys = append(keys, b.keys[j])
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
		if j, ok := b.find(key); ok {
			stored[j] = uint64(version)
		}
	}
	return rows.Err()
}

// find returns the entry of key (entries are sorted by key).
func (b *batch) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(b.keys, key, bytes.Compare)
}

// tableErr classifies err and forgets a table the primary no longer has.
func (s *Store) tableErr(ctx context.Context, table string, err error) error {
	err = s.classify(ctx, err)
	if errors.Is(err, store.ErrUnknownTable) {
		s.remember(table, false)
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
	if s.closed.Load() {
		return store.Row{}, false, store.ErrClosed
	}
	p, err := s.pool(level)
	if err != nil {
		return store.Row{}, false, err
	}
	if store.ValidateTableName(table) != nil {
		return store.Row{}, false, store.ErrUnknownTable
	}
	if key == nil {
		key = []byte{} // nil would be sent as NULL
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row store.Row
	var version int64
	err = p.QueryRow(qctx, `SELECT value, version, deleted FROM `+tableIdent(table)+
		` WHERE kh = sha256($1) AND key = $1`, key).Scan(&row.Value, &version, &row.Deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Row{}, false, nil
	case err != nil && p != s.primary:
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

// replicaErr: a replica that has not replayed a table's creation yet lacks
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
