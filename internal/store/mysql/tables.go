package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// The table registry (the wail_<name> tables themselves, cached in
// Store.tables) and the catalog (wail__catalog); see the package comment.

const (
	catalogTable = "wail__catalog"
	maxIdent     = 64 // MySQL's limit for a table name
)

var createCatalogSQL = `CREATE TABLE IF NOT EXISTS ` + quote(catalogTable) + ` (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  spec LONGBLOB NOT NULL
) ENGINE=InnoDB`

// quote quotes an identifier with backticks (doubling any inside; table
// names are validated before they get here, so there are none).
func quote(ident string) string {
	return "`" + strings.ReplaceAll(ident, "`", "``") + "`"
}

// tableName returns the SQL name of a wail table (see sqlstore.TableName).
func tableName(name string) string { return sqlstore.TableName(name, maxIdent) }

// createTableSQL: value and version are non-reserved words on MariaDB and
// MySQL, so the column names need no quoting.
func createTableSQL(ident string) string {
	return `CREATE TABLE IF NOT EXISTS ` + ident + ` (
  kh         BINARY(32)      NOT NULL PRIMARY KEY,
  k          VARBINARY(4096) NOT NULL,
  value      LONGBLOB        NOT NULL,
  version    BIGINT          NOT NULL,
  deleted    BOOL            NOT NULL,
  updated_at TIMESTAMP(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`
}

// existsOnPrimary reports whether table exists, from the cache or the primary.
func (s *Store) existsOnPrimary(ctx context.Context, table string) (bool, error) {
	return s.tables.Exists(table, func() (bool, error) {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		var n int
		err := s.primary.QueryRowContext(qctx, `SELECT COUNT(*) FROM information_schema.tables
 WHERE table_schema = DATABASE() AND table_name = ?`, tableName(table)).Scan(&n)
		if err != nil {
			return false, s.classify(ctx, err)
		}
		return n > 0, nil
	})
}

// CreateTable creates the SQL table of table; idempotent.
func (s *Store) CreateTable(ctx context.Context, table string) error {
	if err := s.createTable(ctx, table); err != nil {
		return fmt.Errorf("mysql: create table %s: %w", table, err)
	}
	return nil
}

func (s *Store) createTable(ctx context.Context, table string) error {
	if err := store.ValidateTableName(table); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.tables.Create(table, func() error {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		if _, err := s.primary.ExecContext(qctx, createTableSQL(quote(tableName(table)))); err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
}

// SaveTable stores (or replaces) the catalog entry t.Name.
func (s *Store) SaveTable(ctx context.Context, t store.Table) error {
	if err := s.saveTable(ctx, t); err != nil {
		return fmt.Errorf("mysql: save table %s: %w", t.Name, err)
	}
	return nil
}

func (s *Store) saveTable(ctx context.Context, t store.Table) error {
	if err := store.ValidateTableName(t.Name); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	// REPLACE is the same on MariaDB and MySQL.
	if _, err := s.primary.ExecContext(qctx, `REPLACE INTO `+quote(catalogTable)+` (name, spec) VALUES (?, ?)`, t.Name, sqlstore.NotNull(t.Spec)); err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// Tables returns the catalog, ordered by name.
func (s *Store) Tables(ctx context.Context) ([]store.Table, error) {
	ts, err := s.listTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql: tables: %w", err)
	}
	return ts, nil
}

func (s *Store) listTables(ctx context.Context) ([]store.Table, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.primary.QueryContext(qctx, `SELECT name, spec FROM `+quote(catalogTable)+` ORDER BY name`)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer rows.Close()
	var ts []store.Table
	for rows.Next() {
		var t store.Table
		if err := rows.Scan(&t.Name, &t.Spec); err != nil {
			return nil, s.classify(ctx, err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(ctx, err)
	}
	return ts, nil
}
