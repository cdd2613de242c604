package sqltest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// RowLocker holds a row lock on a key of a wail table from a session of
// its own, as another application of the database would.
type RowLocker interface {
	// Lock takes the row lock of key (its row must exist) in a new
	// transaction.
	Lock(ctx context.Context, key []byte) error
	// Release rolls that transaction back: the row is unchanged.
	Release() error
}

// PostgresLocker opens a session on dsn that locks rows of the wail table
// table (short names only); it is closed when the test ends.
func PostgresLocker(t testing.TB, dsn, table string) RowLocker {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &pgLocker{conn: conn, ident: pgx.Identifier{sqlstore.RowPrefix + table}.Sanitize()}
}

type pgLocker struct {
	conn  *pgx.Conn
	ident string
	tx    pgx.Tx
}

func (l *pgLocker) Lock(ctx context.Context, key []byte) error {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return err
	}
	l.tx = tx
	var one int
	return tx.QueryRow(ctx, `SELECT 1 FROM `+l.ident+` WHERE kh = sha256($1) FOR UPDATE`, key).Scan(&one)
}

func (l *pgLocker) Release() error { return l.tx.Rollback(context.Background()) }

// MySQLLocker is PostgresLocker on MariaDB or MySQL.
func MySQLLocker(t testing.TB, dsn, table string) RowLocker {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return &myLocker{db: db, ident: "`" + sqlstore.RowPrefix + table + "`"}
}

type myLocker struct {
	db    *sql.DB
	ident string
	tx    *sql.Tx
}

func (l *myLocker) Lock(ctx context.Context, key []byte) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	l.tx = tx
	kh := sha256.Sum256(key)
	var one int
	return tx.QueryRowContext(ctx, `SELECT 1 FROM `+l.ident+` WHERE kh = ? FOR UPDATE`, kh[:]).Scan(&one)
}

func (l *myLocker) Release() error { return l.tx.Rollback() }
