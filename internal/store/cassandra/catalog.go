package cassandra

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// The catalog's swaps are lightweight transactions at SERIAL on
// wail__catalog (INSERT ... IF NOT EXISTS, UPDATE ... IF spec = ?, DELETE
// ... IF spec = ?): linearizable across every process, and rare (a table
// created, altered or dropped). The catalog keeps Cassandra's default
// gc_grace_seconds, since a dropped table's entry is a delete (a
// tombstone): run repair within gc_grace_seconds, as for any table with
// deletes, or a replica that missed the delete could bring the entry back.

// SwapTable implements store.CatalogSwapper.
func (s *Store) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.swapTable(ctx, name, old, new)
	if err != nil {
		return nil, false, fmt.Errorf("cassandra: swap table %s: %w", name, err)
	}
	return cur, ok, nil
}

func (s *Store) swapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if err := store.ValidateCatalogName(name); err != nil {
		return nil, false, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, false, err
	}
	cat := s.ks + "." + catalogTable
	// tag marks this call's write, so that a try whose outcome is unknown
	// (a timed-out LWT) is known to be ours when the retry finds it, and
	// not another caller's write of the same spec (two increments of one
	// counter from the same old value: taking theirs for ours loses an
	// edit).
	tag := make([]byte, 16)
	if _, err := rand.Read(tag); err != nil {
		return nil, false, err
	}
	var curTag []byte
	retried := false
	exec := func(kind sqlstore.Swap) (applied bool, err error) {
		var tries int
		switch kind {
		case sqlstore.SwapInsert:
			applied, tries, err = s.casTries(ctx, "INSERT INTO "+cat+" (name, spec, tag) VALUES (?, ?, ?) IF NOT EXISTS", name, new, tag)
		case sqlstore.SwapDelete:
			applied, tries, err = s.casTries(ctx, "DELETE FROM "+cat+" WHERE name = ? IF spec = ?", name, old)
		default:
			applied, tries, err = s.casTries(ctx, "UPDATE "+cat+" SET spec = ?, tag = ? WHERE name = ? IF spec = ?", new, tag, name, old)
		}
		retried = tries > 1
		return applied, err
	}
	read := func() ([]byte, error) {
		var cur []byte
		err := s.paxos(ctx, func() error {
			err := s.session.Query("SELECT spec, tag FROM "+cat+" WHERE name = ?", name).WithContext(ctx).
				Consistency(gocql.Consistency(gocql.Serial)).Scan(&cur, &curTag)
			if errors.Is(err, gocql.ErrNotFound) {
				cur, curTag = nil, nil
				return nil
			}
			return err
		})
		if err == nil && cur == nil {
			return nil, nil
		}
		return append([]byte{}, cur...), err
	}
	cur, ok, err := sqlstore.SwapTable(old, new, exec, read)
	if err == nil && !ok && retried && bytes.Equal(cur, new) && (new == nil || bytes.Equal(curTag, tag)) {
		// A try that timed out under contention applied, and the retry
		// found our own write (its tag), or for a delete none: the swap
		// is ours. (Two deletes of the same old spec can both answer
		// true: the outcome each asked for holds.)
		ok = true
	}
	return cur, ok, err
}

// DropTable drops the table's Cassandra table (and its rows); dropping a
// table that does not exist is not an error. The catalog entry is kept.
func (s *Store) DropTable(ctx context.Context, table string) error {
	if err := s.dropTable(ctx, table); err != nil {
		return fmt.Errorf("cassandra: drop table %s: %w", table, err)
	}
	return nil
}

func (s *Store) dropTable(ctx context.Context, table string) error {
	q, err := s.qualified(table)
	if err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.tables.Drop(table, func() error { return s.ddl(ctx, "DROP TABLE IF EXISTS "+q) })
}
