package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wail-cdc/wail/internal/store"
)

// The table registry (t/<table>, cached in Store.tables) and the catalog
// (c/<name>); see the layout in store.go.

func (s *Store) loadTables() error {
	return s.scan(prefixTable, func(name, _ []byte) {
		s.tables[string(name)] = struct{}{}
	})
}

func (s *Store) known(table string) bool {
	s.tablesMu.RLock()
	_, ok := s.tables[table]
	s.tablesMu.RUnlock()
	return ok
}

// CreateTable registers table; idempotent.
func (s *Store) CreateTable(ctx context.Context, table string) error {
	if err := s.createTable(ctx, table); err != nil {
		return fmt.Errorf("pebble: create table %s: %w", table, err)
	}
	return nil
}

func (s *Store) createTable(ctx context.Context, table string) error {
	if err := store.ValidateTableName(table); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if s.known(table) {
		return nil
	}
	if err := s.set([]byte(prefixTable+table), nil); err != nil {
		return err
	}
	s.tablesMu.Lock()
	s.tables[table] = struct{}{}
	s.tablesMu.Unlock()
	return nil
}

// SaveTable stores (or replaces) the catalog entry t.Name.
func (s *Store) SaveTable(ctx context.Context, t store.Table) error {
	if err := s.saveTable(ctx, t); err != nil {
		return fmt.Errorf("pebble: save table %s: %w", t.Name, err)
	}
	return nil
}

func (s *Store) saveTable(ctx context.Context, t store.Table) error {
	if err := store.ValidateTableName(t.Name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	s.catalogMu.Lock()
	defer s.catalogMu.Unlock()
	return s.set([]byte(prefixCatalog+t.Name), t.Spec)
}

// Tables returns the catalog, ordered by name.
func (s *Store) Tables(ctx context.Context) ([]store.Table, error) {
	ts, err := s.listTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("pebble: tables: %w", err)
	}
	return ts, nil
}

func (s *Store) listTables(ctx context.Context) ([]store.Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := s.lockCatalog(); err != nil {
		return nil, err
	}
	defer s.catalogMu.Unlock()
	var ts []store.Table
	err := s.scanChecked(prefixCatalog, func(k, v []byte) {
		ts = append(ts, store.Table{Name: string(k), Spec: bytes.Clone(v)})
	})
	return ts, err
}

// SwapTable implements store.CatalogSwapper.
func (s *Store) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.swapTable(ctx, name, old, new)
	if err != nil {
		return nil, false, fmt.Errorf("pebble: swap table %s: %w", name, err)
	}
	return cur, ok, nil
}

func (s *Store) swapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if err := store.ValidateCatalogName(name); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := s.acquire(); err != nil {
		return nil, false, err
	}
	defer s.release()
	if err := s.lockCatalog(); err != nil {
		return nil, false, err
	}
	defer s.catalogMu.Unlock()
	key := []byte(prefixCatalog + name)
	cur, err := s.catalogEntry(key)
	if err != nil {
		return nil, false, err
	}
	if (cur == nil) != (old == nil) || !bytes.Equal(cur, old) {
		return cur, false, nil
	}
	if err := s.write(func() error {
		if new == nil {
			return s.db.Delete(key, s.wopts)
		}
		return s.db.Set(key, new, s.wopts)
	}); err != nil {
		return nil, false, err
	}
	return new, true, nil
}

// lockCatalog takes catalogMu for a read of the catalog: every catalog
// write holds it until the write is durable, or failed (then the store
// failed, and the read fails), so a read never returns an entry a crash
// could take away.
func (s *Store) lockCatalog() error {
	s.catalogMu.Lock()
	if err := s.failure.failed(); err != nil {
		s.catalogMu.Unlock()
		return err
	}
	return nil
}

// catalogEntry reads the catalog entry at key (nil: absent, never empty
// otherwise); a read error or a panic in Pebble fails the store.
func (s *Store) catalogEntry(key []byte) (cur []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			cur, err = nil, s.failure.fail(fmt.Errorf("pebble panicked in a read: %v", r))
		}
	}()
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.failure.fail(fmt.Errorf("read: %w", err))
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// DropTable implements store.TableDropper: it deletes the table's rows and
// registry entry in one batch. It waits for every operation in flight (it
// holds the store's lifetime lock exclusively, as Close does), so no
// Apply of the table lands after it.
func (s *Store) DropTable(ctx context.Context, table string) error {
	if err := s.dropTable(ctx, table); err != nil {
		return fmt.Errorf("pebble: drop table %s: %w", table, err)
	}
	return nil
}

func (s *Store) dropTable(ctx context.Context, table string) error {
	if err := store.ValidateTableName(table); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if err := s.failure.failed(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	from := rowKey(table, nil)
	to := bytes.Clone(from)
	to[len(to)-1]++ // the \x00 after the table name: every key of the table sorts below
	if err := b.DeleteRange(from, to, nil); err != nil {
		_ = b.Close()
		return err
	}
	if err := b.Delete([]byte(prefixTable+table), nil); err != nil {
		_ = b.Close()
		return err
	}
	if err := s.write(func() error {
		if err := s.db.Apply(b, s.wopts); err != nil {
			return err
		}
		_ = b.Close() // only once Pebble is done with it
		return nil
	}); err != nil {
		return err
	}
	s.forgetTable(table) // no Apply or Get runs: we hold the lifetime lock
	s.forgetRows()
	s.tablesMu.Lock()
	delete(s.tables, table)
	s.tablesMu.Unlock()
	return nil
}
