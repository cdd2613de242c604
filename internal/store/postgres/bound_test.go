package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

func TestDefinite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"an ERROR rolls the transaction back", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "57014"}, true},
		{"a localized ERROR", &pgconn.PgError{Severity: "ERROR", Code: "55P03"}, true},
		{"FATAL can follow the commit", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}, false},
		{"PANIC", &pgconn.PgError{SeverityUnlocalized: "PANIC"}, false},
		{"FATAL before the statement completed", notRun{&pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}}, true},
		{"never sent", notSent{context.DeadlineExceeded}, true},
		{"wrapped", fmt.Errorf("x: %w", notSent{io.EOF}), true},
		{"the caller's deadline mid-write", context.DeadlineExceeded, false},
		{"the connection lost", io.ErrUnexpectedEOF, false},
		{"pgconn says nothing was sent", fmt.Errorf("x: %w", unsent{io.ErrUnexpectedEOF}), true},
	}
	for _, tc := range tests {
		if got := definite(tc.err); got != tc.want {
			t.Errorf("%s: definite(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// unsent is an error pgconn.SafeToRetry reports as one before anything
// was sent (as pgconn's own connect and write errors do).
type unsent struct{ error }

func (unsent) SafeToRetry() bool { return true }

// TestEnded: only the server ending the session before the statement
// completed makes a pipeline's error definite (notRun).
func TestEnded(t *testing.T) {
	t.Parallel()
	fatal := &pgconn.PgError{SeverityUnlocalized: "FATAL", Code: "57P01"}
	tests := []struct {
		name      string
		err       error
		completed bool
		notRun    bool
	}{
		{"FATAL before the statement completed", fatal, false, true},
		{"FATAL after it completed (the commit may be done)", fatal, true, false},
		{"PANIC before it completed", &pgconn.PgError{SeverityUnlocalized: "PANIC"}, false, true},
		{"a localized FATAL", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, false, true},
		{"idle session timeout", &pgconn.PgError{SeverityUnlocalized: "FATAL", Code: "57P05"}, false, true},
		// A pooler's own FATAL (PgBouncer: the server's connection lost,
		// its query_timeout) can come after the server committed and
		// before the pooler passed the CommandComplete on.
		{"a pooler's FATAL (server conn crashed?)", &pgconn.PgError{SeverityUnlocalized: "FATAL", Code: "08P01", Message: "server conn crashed?"}, false, false},
		{"a FATAL of no session end", &pgconn.PgError{SeverityUnlocalized: "FATAL", Code: "XX000"}, false, false},
		{"an ERROR stays as it is", &pgconn.PgError{SeverityUnlocalized: "ERROR", Code: "57014"}, false, false},
		{"the connection lost", io.ErrUnexpectedEOF, false, false},
		{"none", nil, false, false},
	}
	for _, tc := range tests {
		got := ended(tc.err, tc.completed)
		var nr notRun
		if errors.As(got, &nr) != tc.notRun || !errors.Is(got, tc.err) {
			t.Errorf("%s: ended(%v, %v) = %#v; want notRun %v, wrapping the error", tc.name, tc.err, tc.completed, got, tc.notRun)
		}
	}
}

// TestWriteBoundIsLocal: the bound a write sets lives only as long as its
// transaction: the session (the pool's only connection) is back to no
// statement or lock timeout after a write that hit it.
func TestWriteBoundIsLocal(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 1, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	apply := func(ctx context.Context, v uint64) error {
		_, err := s.Apply(ctx, "b", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
		return err
	}
	if err := apply(ctx, 1); err != nil {
		t.Fatal(err)
	}
	lk := sqltest.PostgresLocker(t, dsn, "b")
	if err := lk.Lock(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = apply(wctx, 2)
	cancel()
	if !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("write blocked by a lock: %v, want ErrNotApplied", err)
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	for _, setting := range []string{"statement_timeout", "lock_timeout"} {
		var v string
		if err := s.primary.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "4750ms" { // the session's own bound: the query timeout less a margin
			t.Errorf("after the bounded write the session has %s = %s, want 4750ms", setting, v)
		}
	}
}

// TestSessionBounds: every session of the store's pools, primary and
// replicas, bounds every statement, lock wait and idle transaction inside
// PostgreSQL by the query timeout, unless the DSN sets its own; a lock
// wait of a plain statement (a Get behind another session's exclusive
// lock) ends with the server's own timeout, not only the client's.
func TestSessionBounds(t *testing.T) {
	t.Parallel()
	dsn, replicas := freshDSNs(t, 1)
	s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: replicas, QueryTimeout: 1500 * time.Millisecond, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	for i, p := range append([]*pgxpool.Pool{s.primary}, s.replicas...) {
		for _, setting := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
			var v string
			if err := p.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != "1350ms" { // sqlstore.SessionBound
				t.Errorf("pool %d: %s = %s, want 1350ms", i, setting, v)
			}
		}
	}
	own, err := Open(context.Background(), Options{DSN: dsn + "&lock_timeout=7s", Logger: quiet})
	own = sqltest.Closing(t, own, err)
	var v string
	if err := own.primary.QueryRow(ctx, "SHOW lock_timeout").Scan(&v); err != nil || v != "7s" {
		t.Errorf("a DSN's own lock_timeout: %s, %v; want 7s", v, err)
	}

	if err := s.CreateTable(ctx, "sb"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE "+tableIdent("sb")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Get(ctx, "sb", []byte("k"), 1)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != codeLockNotAvailable && pgErr.Code != codeQueryCanceled) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a Get behind an exclusive lock: %v; want the server's lock or statement timeout, unavailable", err)
	}
}

// TestScanBoundByDeadline: ScanKeys behind another session's exclusive
// lock on the table is stopped by PostgreSQL itself (its statement or
// lock timeout) before the caller's deadline, not only by the client:
// the bound the scan set inside the database was the store's whole query
// timeout, so a caller that gave up (or a process cut off from the
// database) left the statement waiting there for up to that long.
func TestScanBoundByDeadline(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN, o.QueryTimeout = dsn, 10*time.Second })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "sc"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE "+tableIdent("sc")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	const deadline = time.Second
	sctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	_, err = s.ScanKeys(sctx, "sc", nil, 10)
	took := time.Since(start)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != codeLockNotAvailable && pgErr.Code != codeQueryCanceled) || took >= deadline {
		t.Fatalf("a scan behind an exclusive lock: %v after %s; want PostgreSQL's own lock or statement timeout before the %s deadline",
			err, took.Round(time.Millisecond), deadline)
	}
}
