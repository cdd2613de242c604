package sqlstore

import (
	"errors"
	"fmt"

	"github.com/wail-cdc/wail/internal/store"
)

// LevelNames returns the names of the read levels of a store with
// replicas replicas: "replica-0", "replica-1", ... then "primary".
func LevelNames(replicas int) []string {
	names := make([]string, 0, replicas+1)
	for i := range replicas {
		names = append(names, fmt.Sprintf("replica-%d", i))
	}
	return append(names, "primary")
}

// Pool returns the connection pool of a read level: level i is
// replicas[i], the level after the replicas the primary.
func Pool[P any](level store.Level, primary P, replicas []P) (P, error) {
	switch {
	case level < 0 || int(level) > len(replicas):
		var none P
		return none, fmt.Errorf("read level %d out of range [0, %d]", level, len(replicas))
	case int(level) < len(replicas):
		return replicas[level], nil
	}
	return primary, nil
}

// ReadPool returns the pool a read of table at level goes to, after the
// checks every read makes first: the store is open (ErrClosed) and table
// is a valid name (ErrUnknownTable).
func ReadPool[P any](closed bool, table string, level store.Level, primary P, replicas []P) (P, error) {
	var none P
	if closed {
		return none, store.ErrClosed
	}
	p, err := Pool(level, primary, replicas)
	if err != nil {
		return none, err
	}
	if store.ValidateTableName(table) != nil {
		return none, store.ErrUnknownTable
	}
	return p, nil
}

// Row returns the store.Row of the columns a Get read: a tombstone has a
// nil Value, a live row a non-nil one.
func Row(value []byte, version int64, deleted bool, schemaID int64) store.Row {
	if deleted {
		value, schemaID = nil, 0
	} else {
		value = NotNull(value)
	}
	return store.Row{Value: value, Version: uint64(version), Deleted: deleted, SchemaID: uint32(schemaID)}
}

// ReplicaErr returns what a Get at a replica answers for err, the
// replica's error as the store classified it. A replica that has not yet
// replayed a table's creation lacks the table, but the table exists: when
// err is store.ErrUnknownTable and exists (which asks the primary) says
// the table is there, the key is not found at that replica, and
// ReplicaErr returns nil. Otherwise it returns err, or exists' error.
func ReplicaErr(err error, exists func() (bool, error)) error {
	if !errors.Is(err, store.ErrUnknownTable) {
		return err
	}
	ok, perr := exists()
	switch {
	case perr != nil:
		return perr
	case ok:
		return nil
	}
	return err
}

// MultiGetChunk bounds the keys of one statement of a SQL store's
// GetMany; more keys take several statements (each bounded alone).
const MultiGetChunk = 1000

// MultiRows collects what a SQL store's GetMany read: the distinct keys
// asked for, and the row found for each, answered in the order asked.
type MultiRows struct {
	keys  [][]byte
	asked map[string]bool
	found map[string]store.Row
}

// NewMultiRows starts collecting the rows of keys.
func NewMultiRows(keys [][]byte) *MultiRows {
	m := &MultiRows{asked: make(map[string]bool, len(keys)), found: make(map[string]store.Row, len(keys))}
	for _, k := range keys {
		if !m.asked[string(k)] {
			m.asked[string(k)] = true
			m.keys = append(m.keys, NotNull(k))
		}
	}
	return m
}

// Chunks returns the distinct keys in slices of at most MultiGetChunk.
func (m *MultiRows) Chunks() [][][]byte {
	var out [][][]byte
	for lo := 0; lo < len(m.keys); lo += MultiGetChunk {
		out = append(out, m.keys[lo:min(lo+MultiGetChunk, len(m.keys))])
	}
	return out
}

// Found records the columns read for key (a row whose key was not asked
// for, which a hash collision could select, is ignored).
func (m *MultiRows) Found(key, value []byte, version int64, deleted bool, schemaID int64) {
	if m.asked[string(key)] {
		m.found[string(key)] = Row(value, version, deleted, schemaID)
	}
}

// Rows is a result set, as database/sql and pgx both give one.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Scan records every row of rows, whose columns are key, value, version,
// deleted and schema id, and returns rows' error.
func (m *MultiRows) Scan(rows Rows) error {
	for rows.Next() {
		var key, value []byte
		var version, schemaID int64
		var deleted bool
		if err := rows.Scan(&key, &value, &version, &deleted, &schemaID); err != nil {
			return err
		}
		m.Found(key, value, version, deleted, schemaID)
	}
	return rows.Err()
}

// Reads answers keys (those NewMultiRows was given), in order: the row
// found, or not found. A key asked more than once gets its own copy of
// the value each further time: the rows are the caller's.
func (m *MultiRows) Reads(keys [][]byte) []store.KeyRead {
	out := make([]store.KeyRead, len(keys))
	given := make(map[string]bool, len(m.found))
	for i, k := range keys {
		row, ok := m.found[string(k)]
		if ok && given[string(k)] && row.Value != nil {
			row.Value = append([]byte{}, row.Value...)
		}
		given[string(k)] = true
		out[i] = store.KeyRead{Row: row, Found: ok}
	}
	return out
}

// ReadMany is a SQL store's GetMany: read fills m with the rows of each
// chunk of the distinct keys; fail classifies read's error (nil: the
// chunk has nothing, e.g. a replica that lacks the table yet). It answers
// keys in order.
func ReadMany(keys [][]byte, read func(chunk [][]byte, m *MultiRows) error, fail func(error) error) ([]store.KeyRead, error) {
	m := NewMultiRows(keys)
	for _, chunk := range m.Chunks() {
		if err := read(chunk, m); err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
		}
	}
	return m.Reads(keys), nil
}
