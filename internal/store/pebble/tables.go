package pebble

import (
	"bytes"
	"context"
	"fmt"

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
	var ts []store.Table
	err := s.scanChecked(prefixCatalog, func(k, v []byte) {
		ts = append(ts, store.Table{Name: string(k), Spec: bytes.Clone(v)})
	})
	return ts, err
}
