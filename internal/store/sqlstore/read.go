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
