package mysql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
)

// TestReadsBoundByDeadline: a read (Get, GetMany, ScanKeys) behind another
// session's lock of the table (LOCK TABLES ... WRITE: a metadata lock, as
// DDL or a table copy holds) is stopped by the server itself before the
// caller's deadline, not only by the client: Get had no bound inside the
// server but the session's (the whole query timeout), ScanKeys set the
// whole query timeout whatever the caller's deadline, so a caller that
// gave up (or a process cut off from the database) left the statement
// waiting there, queued with every later statement on the table.
func TestReadsBoundByDeadline(t *testing.T) {
	t.Parallel()
	s, _ := lockedTable(t, "rb", 10*time.Second)
	ctx := t.Context()
	reads := map[string]func(context.Context) error{
		"Get": func(ctx context.Context) error { _, _, err := s.Get(ctx, "rb", []byte("k"), 0); return err },
		"GetMany": func(ctx context.Context) error {
			_, err := s.GetMany(ctx, "rb", [][]byte{[]byte("k"), []byte("l")}, 0)
			return err
		},
		"ScanKeys": func(ctx context.Context) error { _, err := s.ScanKeys(ctx, "rb", nil, 10); return err },
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			const deadline = time.Second
			rctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			err := read(rctx)
			took := time.Since(start)
			// The server's own error, not the client's deadline (its answer
			// may come a few milliseconds after the deadline on a loaded
			// machine: TestGetManyBound).
			var myErr *mysql.MySQLError
			if !errors.As(err, &myErr) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("%s behind a table lock: %v after %s; want the server's own statement or lock timeout, unavailable, before the %s deadline",
					name, err, took.Round(time.Millisecond), deadline)
			}
			t.Logf("%s: %v after %s", name, err, took.Round(time.Millisecond))
		})
	}
}

// TestReadsLeaveNoPreparedStatements: reads left a prepared statement on
// every connection of the pools per read level and table (Get's, prepared
// once per level and table and again on each connection it ran on): with
// 16 connections and a replica, 512 tables took the server's whole
// max_prepared_stmt_count (16382 by default, server-wide), after which
// every client of the server that prepares a statement fails (Error
// 1461). Reads send no prepared statement.
func TestReadsLeaveNoPreparedStatements(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	count := func() int64 {
		// The pool's only connection, the one the reads ran on.
		rows, err := s.primary.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var n int64
		for rows.Next() {
			var name string
			var v int64
			if err := rows.Scan(&name, &v); err != nil {
				t.Fatal(err)
			}
			if name == "Com_stmt_prepare" {
				n += v
			} else {
				n -= v
			}
		}
		return n
	}
	before := count()
	for _, table := range []string{"ps1", "ps2", "ps3"} {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: 1}}); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 3; n++ {
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = []byte{byte('a' + i)}
			}
			if _, err := s.GetMany(ctx, table, keys, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.Get(ctx, table, []byte("a"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ScanKeys(ctx, table, nil, 10); err != nil {
			t.Fatal(err)
		}
	}
	if left := count() - before; left != 0 {
		t.Fatalf("%d prepared statements left on the connection after reads of 3 tables", left)
	}
}

// TestBoundedReadSQL: the bound of a read as each server takes it; MySQL
// 8's MAX_EXECUTION_TIME does not cover the wait for the table's metadata
// lock, which SET_VAR(lock_wait_timeout) bounds. (No MySQL in the test
// services: the text only.)
func TestBoundedReadSQL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	const q = "SELECT k FROM `t` WHERE kh = X'00'"
	for _, tc := range []struct {
		s          *Store
		prefix     string
		hasLockVar bool
	}{
		{&Store{mariadb: true, dialect: DialectMariaDB}, "SET STATEMENT max_statement_time=1.", false},
		{&Store{dialect: DialectMySQL8}, "SELECT /*+ MAX_EXECUTION_TIME(1", true},
		{&Store{dialect: DialectMariaDB}, "SELECT /*+ MAX_EXECUTION_TIME(1", false}, // MySQL 5.7
	} {
		got, err := tc.s.boundedRead(ctx, q)
		if err != nil || !strings.HasPrefix(got, tc.prefix) || !strings.HasSuffix(got, " k FROM `t` WHERE kh = X'00'") ||
			strings.Contains(got, "SET_VAR(lock_wait_timeout=2)") != tc.hasLockVar {
			t.Errorf("%v (mariadb %v): %q, %v", tc.s.dialect, tc.s.mariadb, got, err)
		}
	}
}

// TestReadNearlySpentDeadline: a read sent with a deadline nearly spent
// (a budget of a millisecond or two) behind another session's table lock
// is stopped by the server too, not left waiting there once the caller
// gave up: MariaDB's max_statement_time of 0 would be no bound at all.
func TestReadNearlySpentDeadline(t *testing.T) {
	t.Parallel()
	s, db := lockedTable(t, "rn", 30*time.Second)
	ctx := t.Context()
	for _, d := range []time.Duration{6 * time.Millisecond, 7 * time.Millisecond, 9 * time.Millisecond} {
		rctx, cancel := context.WithTimeout(ctx, d)
		_, _, err := s.Get(rctx, "rn", []byte("k"), 0)
		cancel()
		t.Logf("deadline %s: %v", d, err)
	}
	time.Sleep(500 * time.Millisecond)
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%FROM `"+tableName("rn")+"`%' AND ID <> CONNECTION_ID()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d reads still waiting inside the server after their caller gave up", n)
	}
}

// lockedTable opens a store (query timeout timeout) with table made, and
// a database handle of another session, which holds LOCK TABLES ...
// WRITE on it until the test ends.
func lockedTable(t *testing.T, table string, timeout time.Duration) (*Store, *sql.DB) {
	t.Helper()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(context.Background(), Options{DSN: dsn, QueryTimeout: timeout, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	if err := s.CreateTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.ExecContext(ctx, "LOCK TABLES "+quote(tableName(table))+" WRITE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES") })
	return s, db
}
