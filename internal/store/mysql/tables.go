package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

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
  updated_at TIMESTAMP(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  schema_id  BIGINT          NOT NULL DEFAULT 0,
  doc        JSON            NULL
) ENGINE=InnoDB`
}

// oldTablesSQL lists the wail tables made before the columns of later
// versions (schema_id, doc): those with wail's kh column and no doc.
const oldTablesSQL = `SELECT t.table_name FROM information_schema.tables t
 WHERE t.table_schema = DATABASE() AND (t.table_name LIKE 'wail\_%' OR t.table_name LIKE 'wailh\_%')
   AND EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_name = 'kh')
   AND NOT EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_name = 'doc')`

// migrate adds the columns of later versions to older tables; rows
// written before keep schema_id 0 and a NULL doc. Two processes migrating
// at once: the second ALTER fails on the duplicate column (1060), which is
// the work done.
func (s *Store) migrate(ctx context.Context) error {
	rows, err := s.primary.QueryContext(ctx, oldTablesSQL)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		err := s.ddl(ctx, "ALTER TABLE "+quote(n)+" ADD COLUMN schema_id BIGINT NOT NULL DEFAULT 0, ADD COLUMN doc JSON NULL")
		var me *mysql.MySQLError
		if err != nil && !(errors.As(err, &me) && me.Number == 1060) {
			return fmt.Errorf("add columns to %s: %w", n, err)
		}
	}
	return nil
}

// boundDDL returns the DDL statement q bounded inside the server by the
// time ctx has left (sqlstore.Budget): on MariaDB SET STATEMENT
// max_statement_time (which also stops a wait for a metadata lock) and
// lock_wait_timeout for q alone; MySQL 8 has no statement bound for DDL
// and keeps the session's (sessionBounds). So a DROP or CREATE TABLE
// behind another session's transaction on the table fails with the
// server's error before the caller's deadline, instead of waiting inside
// the server, with every statement on the table queued behind it, until
// the server notices the connection is gone.
func (s *Store) boundDDL(ctx context.Context, q string) (string, error) {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil || budget == 0 || !s.mariadb {
		return q, err
	}
	return fmt.Sprintf("SET STATEMENT max_statement_time=%.3f, lock_wait_timeout=%d FOR %s",
		max(budget, time.Millisecond).Seconds(), int64(math.Ceil(budget.Seconds())), q), nil
}

// ddl runs the DDL statement q on the primary, bounded (boundDDL).
func (s *Store) ddl(ctx context.Context, q string) error {
	q, err := s.boundDDL(ctx, q)
	if err != nil {
		return err
	}
	_, err = s.primary.ExecContext(ctx, q)
	return err
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
		// Under the lock of the name: a drop that checked the catalog
		// before this table's entry was saved drops first (fenced.go).
		err := s.underTableLock(qctx, table, func(conn *sql.Conn) error {
			q, err := s.boundDDL(qctx, createTableSQL(quote(tableName(table))))
			if err != nil {
				return err
			}
			_, err = conn.ExecContext(qctx, q)
			return err
		})
		if err != nil {
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

// DropTable implements store.TableDropper: DROP TABLE waits for the
// transactions that hold the table's metadata lock (writes in flight).
func (s *Store) DropTable(ctx context.Context, table string) error {
	if err := s.dropTable(ctx, table); err != nil {
		return fmt.Errorf("mysql: drop table %s: %w", table, err)
	}
	return nil
}

func (s *Store) dropTable(ctx context.Context, table string) error {
	if err := store.ValidateTableName(table); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.tables.Drop(table, func() error {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		if err := s.ddl(qctx, `DROP TABLE IF EXISTS `+quote(tableName(table))); err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
}

// SwapTable implements store.CatalogSwapper with one conditional statement
// on the primary (INSERT, failing on a taken name; UPDATE or DELETE ...
// WHERE spec = old), then a read of the entry when it did not swap.
func (s *Store) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.swapTable(ctx, name, old, new)
	if err != nil {
		return nil, false, fmt.Errorf("mysql: swap table %s: %w", name, err)
	}
	return cur, ok, nil
}

func (s *Store) swapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if err := store.ValidateCatalogName(name); err != nil {
		return nil, false, err
	}
	if s.closed.Load() {
		return nil, false, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	cat := quote(catalogTable)
	exec := func(kind sqlstore.Swap) (bool, error) {
		var res sql.Result
		var err error
		switch kind {
		case sqlstore.SwapInsert:
			res, err = s.primary.ExecContext(qctx, `INSERT INTO `+cat+` (name, spec) VALUES (?, ?)`, name, new)
		case sqlstore.SwapDelete:
			res, err = s.primary.ExecContext(qctx, `DELETE FROM `+cat+` WHERE name = ? AND spec = ?`, name, old)
		default:
			res, err = s.primary.ExecContext(qctx, `UPDATE `+cat+` SET spec = ? WHERE name = ? AND spec = ?`, new, name, old)
		}
		switch {
		case duplicateKey(err):
			return false, nil
		case err != nil:
			return false, s.classify(ctx, err)
		}
		n, err := res.RowsAffected()
		return err == nil && n == 1, nil
	}
	read := func() ([]byte, error) {
		var cur []byte
		err := s.primary.QueryRowContext(qctx, `SELECT spec FROM `+cat+` WHERE name = ?`, name).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil, nil
		case err != nil:
			return nil, s.classify(ctx, err)
		}
		return sqlstore.NotNull(cur), nil
	}
	return sqlstore.SwapTable(old, new, exec, read)
}
