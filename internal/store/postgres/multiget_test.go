package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
)

// TestGetManyBound: a GetMany that waits on a lock (another session
// holds the table ACCESS EXCLUSIVE) is stopped by PostgreSQL itself
// (statement_timeout / lock_timeout set for its transaction) before the
// caller's deadline, and the bound does not outlive the read's
// transaction.
func TestGetManyBound(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN, o.MaxConns = dsn, 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "mb", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	// Once, so that the pool's one connection has the statement prepared:
	// preparing it (before the batch that bounds it) would wait for the
	// lock too, bounded only by the caller's context, which pgx turns into
	// a cancel request to the server.
	if _, err := s.GetMany(ctx, "mb", [][]byte{[]byte("k")}, 0); err != nil {
		t.Fatal(err)
	}
	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = locker.Close(context.Background()) }()
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+tableIdent("mb")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	const deadline = 500 * time.Millisecond
	rctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	_, err = s.GetMany(rctx, "mb", [][]byte{[]byte("k")}, 0)
	took := time.Since(start)
	cancel()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != "55P03" && pgErr.Code != "57014") || !strings.Contains(pgErr.Message, "timeout") || took >= deadline {
		t.Fatalf("a read blocked by a lock: %v after %s; want PostgreSQL's lock or statement timeout before the %s deadline", err, took, deadline)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a read the server's own timeout stopped: %v, want store.ErrUnavailable (it must not count toward a dead letter)", err)
	}
	t.Logf("a blocked read was stopped by the server after %s: %v", took.Round(time.Millisecond), err)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.GetMany(ctx, "mb", [][]byte{[]byte("k")}, 0)
	if err != nil || rows[0].Row.Version != 1 {
		t.Fatalf("GetMany once the lock is gone: %+v, %v", rows, err)
	}
	for _, setting := range []string{"statement_timeout", "lock_timeout"} {
		var v string
		if err := s.primary.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "4750ms" { // the session's own bound (sessionBounds)
			t.Errorf("after the bounded read the session has %s = %s, want 4750ms", setting, v)
		}
	}
}
