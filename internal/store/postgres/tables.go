package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// The table registry (the wail_<name> tables themselves, cached in
// Store.tables) and the catalog (wail__catalog); see the package comment.

const (
	catalogTable = "wail__catalog"
	maxIdent     = 63 // PostgreSQL's NAMEDATALEN-1; longer names are truncated
	// ddlLockKey serialises DDL of concurrent Opens and CreateTables:
	// CREATE TABLE IF NOT EXISTS alone can fail on a unique violation in
	// the system catalogs when two sessions race. ("wail" in ASCII.)
	ddlLockKey = 0x7761696c
)

var createCatalogSQL = `CREATE TABLE IF NOT EXISTS ` + pgx.Identifier{catalogTable}.Sanitize() + ` (
  name text PRIMARY KEY,
  spec bytea NOT NULL
)`

// tableIdent returns the quoted SQL identifier of a wail table (see
// sqlstore.TableName).
func tableIdent(name string) string {
	return pgx.Identifier{sqlstore.TableName(name, maxIdent)}.Sanitize()
}

func createTableSQL(ident string) string {
	return `CREATE TABLE IF NOT EXISTS ` + ident + ` (
  key        bytea       NOT NULL,
  value      bytea       NOT NULL,
  version    bigint      NOT NULL,
  deleted    boolean     NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  kh         bytea GENERATED ALWAYS AS (sha256(key)) STORED PRIMARY KEY,
  schema_id  bigint      NOT NULL DEFAULT 0,
  doc        jsonb
)`
}

// migrateSQL adds the columns of later versions (schema_id, doc) to the
// wail tables made before them: every table of the schema that has wail's
// kh column and lacks one. Rows written before keep schema_id 0 and a
// NULL doc.
const migrateSQL = `DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r'
      AND (c.relname LIKE 'wail\_%' OR c.relname LIKE 'wailh\_%')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'kh' AND NOT a.attisdropped)
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'doc' AND NOT a.attisdropped)
  LOOP
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS schema_id bigint NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS doc jsonb', r.t);
  END LOOP;
END $$`

// ddl runs one DDL statement on the primary under the advisory DDL lock,
// bounded inside PostgreSQL by ctx's deadline (sqlstore.Budget): one pgx
// batch (one round trip, one implicit transaction) of boundSQL, the lock
// and the statement, so the lock wait and the DDL's own wait for the
// table's lock end with an ERROR before the caller's deadline, and the
// transaction ends in the server whatever becomes of the client. An
// explicit transaction, as before, waited in the server for as long as it
// did not hear the client's cancel, holding the DDL lock every
// CreateTable and lease claim takes, and once through, held its locks
// until the client's COMMIT came.
func (s *Store) ddl(ctx context.Context, sql string) error {
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(boundSQL, strconv.FormatInt(max(budget.Milliseconds(), 1), 10))
	batch.Queue("SELECT pg_advisory_xact_lock($1)", int64(ddlLockKey))
	batch.Queue(sql)
	return conn.SendBatch(ctx, batch).Close()
}

// existsOnPrimary reports whether table exists, from the cache or the primary.
func (s *Store) existsOnPrimary(ctx context.Context, table string) (bool, error) {
	return s.tables.Exists(table, func() (bool, error) {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		var ok bool
		if err := s.primary.QueryRow(qctx, "SELECT to_regclass($1) IS NOT NULL", tableIdent(table)).Scan(&ok); err != nil {
			return false, s.classify(ctx, err)
		}
		return ok, nil
	})
}

// CreateTable creates the SQL table of table; idempotent.
func (s *Store) CreateTable(ctx context.Context, table string) error {
	if err := s.createTable(ctx, table); err != nil {
		return fmt.Errorf("postgres: create table %s: %w", table, err)
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
		if err := s.ddl(qctx, createTableSQL(tableIdent(table))); err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
}

// SaveTable stores (or replaces) the catalog entry t.Name.
func (s *Store) SaveTable(ctx context.Context, t store.Table) error {
	if err := s.saveTable(ctx, t); err != nil {
		return fmt.Errorf("postgres: save table %s: %w", t.Name, err)
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
	_, err := s.primary.Exec(qctx, `INSERT INTO `+pgx.Identifier{catalogTable}.Sanitize()+` (name, spec) VALUES ($1, $2)
  ON CONFLICT (name) DO UPDATE SET spec = excluded.spec`, t.Name, sqlstore.NotNull(t.Spec))
	if err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// Tables returns the catalog, ordered by name.
func (s *Store) Tables(ctx context.Context) ([]store.Table, error) {
	ts, err := s.listTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: tables: %w", err)
	}
	return ts, nil
}

func (s *Store) listTables(ctx context.Context) ([]store.Table, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(qctx, `SELECT name, spec FROM `+pgx.Identifier{catalogTable}.Sanitize()+` ORDER BY name`)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Table, error) {
		var t store.Table
		err := r.Scan(&t.Name, &t.Spec)
		return t, err
	})
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	return ts, nil
}

// DropTable implements store.TableDropper: DROP TABLE waits for the
// writes in flight (it takes the table's exclusive lock).
func (s *Store) DropTable(ctx context.Context, table string) error {
	if err := s.dropTable(ctx, table); err != nil {
		return fmt.Errorf("postgres: drop table %s: %w", table, err)
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
		if err := s.ddl(qctx, `DROP TABLE IF EXISTS `+tableIdent(table)); err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
}

// DropTableIf implements store.FencedDropper: one batch, one transaction
// (as ddl's), that locks the catalog entry's row if it holds spec (FOR
// UPDATE: no swap of it, and so no create of the name, until the
// transaction ends) and only then drops the table. PostgreSQL's DDL is
// transactional: the check and the drop commit together.
func (s *Store) DropTableIf(ctx context.Context, table string, spec []byte) (bool, error) {
	dropped, err := s.dropTableIf(ctx, table, spec)
	if err != nil {
		return false, fmt.Errorf("postgres: drop table %s: %w", table, err)
	}
	return dropped, nil
}

func (s *Store) dropTableIf(ctx context.Context, table string, spec []byte) (bool, error) {
	if err := store.ValidateTableName(table); err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, store.ErrClosed
	}
	var dropped bool
	err := s.tables.Drop(table, func() error {
		qctx, cancel := s.withTimeout(ctx)
		defer cancel()
		conn, err := s.primary.Acquire(qctx)
		if err != nil {
			return s.classify(ctx, err)
		}
		defer conn.Release()
		budget, err := sqlstore.Budget(qctx, time.Now())
		if err != nil {
			return err
		}
		// A DO block takes no parameters: the name is a valid table name
		// (letters, digits, '_'), the entry hex.
		match := `FROM ` + pgx.Identifier{catalogTable}.Sanitize() + ` WHERE name = '` + table +
			`' AND spec = decode('` + hex.EncodeToString(spec) + `', 'hex')`
		batch := &pgx.Batch{}
		batch.Queue(boundSQL, strconv.FormatInt(max(budget.Milliseconds(), 1), 10))
		batch.Queue("SELECT pg_advisory_xact_lock($1)", int64(ddlLockKey))
		batch.Queue(`DO $$ BEGIN PERFORM 1 ` + match + ` FOR UPDATE; IF FOUND THEN DROP TABLE IF EXISTS ` +
			tableIdent(table) + `; END IF; END $$`)
		batch.Queue(`SELECT EXISTS (SELECT 1 ` + match + `)`).QueryRow(func(r pgx.Row) error { return r.Scan(&dropped) })
		if err := conn.SendBatch(qctx, batch).Close(); err != nil {
			return s.classify(ctx, err)
		}
		return nil
	})
	return dropped, err
}

// SwapTable implements store.CatalogSwapper with one conditional statement
// on the primary (INSERT ... ON CONFLICT DO NOTHING, UPDATE or DELETE ...
// WHERE spec = old), then a read of the entry when it did not swap.
func (s *Store) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.swapTable(ctx, name, old, new)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: swap table %s: %w", name, err)
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
	cat := pgx.Identifier{catalogTable}.Sanitize()
	exec := func(kind sqlstore.Swap) (bool, error) {
		var tag pgconn.CommandTag
		var err error
		switch kind {
		case sqlstore.SwapInsert:
			tag, err = s.primary.Exec(qctx, `INSERT INTO `+cat+` (name, spec) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, new)
		case sqlstore.SwapDelete:
			tag, err = s.primary.Exec(qctx, `DELETE FROM `+cat+` WHERE name = $1 AND spec = $2`, name, old)
		default:
			tag, err = s.primary.Exec(qctx, `UPDATE `+cat+` SET spec = $3 WHERE name = $1 AND spec = $2`, name, old, new)
		}
		if err != nil {
			return false, s.classify(ctx, err)
		}
		return tag.RowsAffected() == 1, nil
	}
	read := func() ([]byte, error) {
		var cur []byte
		err := s.primary.QueryRow(qctx, `SELECT spec FROM `+cat+` WHERE name = $1`, name).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, nil
		case err != nil:
			return nil, s.classify(ctx, err)
		}
		return sqlstore.NotNull(cur), nil
	}
	return sqlstore.SwapTable(old, new, exec, read)
}
