package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestWriteErr: only an error of the COMMIT leaves the outcome unknown;
// before it, nothing can have committed.
func TestWriteErr(t *testing.T) {
	t.Parallel()
	var s Store
	ctx := t.Context()
	for _, tc := range []struct {
		err        error
		notApplied bool
	}{
		{context.DeadlineExceeded, true},
		{io.ErrUnexpectedEOF, true},
		{commitErr{io.ErrUnexpectedEOF}, false},
		{commitErr{context.DeadlineExceeded}, false},
	} {
		if got := s.writeErr(ctx, "t", tc.err); errors.Is(got, store.ErrNotApplied) != tc.notApplied {
			t.Errorf("writeErr(%v) = %v, want ErrNotApplied: %v", tc.err, got, tc.notApplied)
		}
	}
}

// TestSessionBounds: every session of the store's pools bounds its lock
// waits, and on MariaDB its statements, inside the server by the query
// timeout less a margin, unless the DSN sets its own; a catalog swap
// stuck behind another session's row lock fails with the server's lock
// wait timeout before the caller gives up, and does not commit when the
// lock goes away later.
func TestSessionBounds(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(context.Background(), Options{DSN: dsn, QueryTimeout: 1500 * time.Millisecond, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	var lockWait, innoWait int
	var stmt float64
	if err := s.primary.QueryRowContext(ctx, "SELECT @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout, @@SESSION.max_statement_time").
		Scan(&lockWait, &innoWait, &stmt); err != nil {
		t.Fatal(err)
	}
	if lockWait != 2 || innoWait != 2 || stmt != 1.35 { // 1350 ms: whole seconds rounded up for the lock waits
		t.Errorf("session: lock_wait_timeout %d, innodb_lock_wait_timeout %d, max_statement_time %v; want 2, 2, 1.35", lockWait, innoWait, stmt)
	}
	own, err := Open(context.Background(), Options{DSN: dsn + "?innodb_lock_wait_timeout=7", Logger: quiet})
	own = sqltest.Closing(t, own, err)
	if err := own.primary.QueryRowContext(ctx, "SELECT @@SESSION.innodb_lock_wait_timeout").Scan(&innoWait); err != nil || innoWait != 7 {
		t.Errorf("a DSN's own innodb_lock_wait_timeout: %d, %v; want 7", innoWait, err)
	}

	old, new := []byte("old"), []byte("new")
	if _, ok, err := s.SwapTable(ctx, "sb", nil, old); err != nil || !ok {
		t.Fatalf("SwapTable: %v, %v", ok, err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := tx.QueryRowContext(ctx, "SELECT 1 FROM "+quote(catalogTable)+" WHERE name = 'sb' FOR UPDATE").Scan(&one); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = s.SwapTable(ctx, "sb", old, new)
	took := time.Since(start)
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a swap behind a row lock: %v after %s; want unavailable", err, took)
	}
	time.Sleep(2500 * time.Millisecond) // past the server's own lock wait bound
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a swap still waiting would commit now
	if cur, ok, err := s.SwapTable(ctx, "sb", old, old); err != nil || !ok || string(cur) != "old" {
		t.Fatalf("after the lock went away the entry is %q (%v, %v), want %q: the failed swap committed later", cur, ok, err, old)
	}
}

// TestStrictMode: a key longer than the k column (VARBINARY(4096)) is
// refused, not cut, even where the server's or the DSN's sql_mode is not
// strict: a cut key was reported applied and never found by Get.
func TestStrictMode(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	for _, suffix := range []string{"", "?sql_mode=%27%27", "?sql_mode=%27ANSI%27"} {
		s, err := Open(context.Background(), Options{DSN: dsn + suffix, Logger: quiet})
		s = sqltest.Closing(t, s, err)
		ctx := t.Context()
		if err := s.CreateTable(ctx, "sm"); err != nil {
			t.Fatal(err)
		}
		key := bytes.Repeat([]byte{'k'}, 4097)
		out, err := s.Apply(ctx, "sm", []store.Mutation{{Key: key, Value: []byte("v"), Version: 1}})
		if !errors.Is(err, store.ErrNotApplied) {
			row, found, gerr := s.Get(ctx, "sm", key, 0)
			t.Errorf("DSN%s: a key past the column: Apply = %+v, %v (Get: %+v found=%v %v); want ErrNotApplied", suffix, out, err, row, found, gerr)
		}
	}
}
