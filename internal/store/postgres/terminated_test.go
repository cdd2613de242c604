package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestTerminatedWhileIdle: a pooled connection whose session the server
// ended while it sat idle (pg_terminate_backend, a fast shutdown or a
// restart of the database: PostgreSQL sends FATAL 57P01 to every
// session) is found out only by the next statement on it, whose answer
// is that FATAL, read before any result of the write's pipeline. pgxpool
// pings only connections idle for more than a second, so under load
// every pooled connection fails one write this way after a restart. The
// server ended the session before it ran any of the pipeline, so the
// write did not happen: the error must say ErrNotApplied (an ABORT, a
// retry), not leave the outcome unknown (no ABORT: each such write held
// its intent for the whole visibility window and was then reported as an
// unmaterialized intent, "the window is too short"). Nothing is stored.
func TestTerminatedWhileIdle(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN = dsn; o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "ti"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "ti", []store.Mutation{{Key: []byte("k"), Value: []byte("v1"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := conn.Conn().PgConn().PID()
	conn.Release()
	exec(t, dsn, `SELECT pg_terminate_backend($1::int, 5000)`, int32(pid))

	_, err = s.Apply(ctx, "ti", []store.Mutation{{Key: []byte("k"), Value: []byte("v2"), Version: 2}})
	t.Logf("apply on the terminated connection (pid %d): %v", pid, err)
	if err != nil && !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("apply on a connection the server had ended before the write: %v; want nil or ErrNotApplied", err)
	}
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("apply on a connection the server had ended: %v; want ErrUnavailable (retry)", err)
	}
	row, _, gerr := s.Get(context.Background(), "ti", []byte("k"), 0)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if want := map[bool]uint64{true: 2, false: 1}[err == nil]; row.Version != want {
		t.Fatalf("stored version %d after the write returned %v; want %d", row.Version, err, want)
	}
}

// TestTerminatedAtCommit: a FATAL that comes after the write's statement
// completed may come after its commit (the pipeline's transaction commits
// at its Sync): the outcome stays unknown, never ErrNotApplied. Here a
// deferred constraint trigger holds the commit (it sleeps when the
// transaction commits, after the INSERT's CommandComplete) while the
// session is terminated.
func TestTerminatedAtCommit(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN = dsn; o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "tc"); err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, `CREATE FUNCTION tc_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$`)
	exec(t, dsn, `CREATE CONSTRAINT TRIGGER tc_slow AFTER INSERT OR UPDATE ON `+tableIdent("tc")+
		` DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tc_slow()`)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Apply(wctx, "tc", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}})
		done <- err
	}()
	committing := `FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE 'INSERT INTO ` + tableIdent("tc") + ` %'`
	eventually(t, "the write to commit (its deferred trigger sleeping)", func() bool { return queryString(t, dsn, `SELECT count(*) `+committing) == "1" })
	exec(t, dsn, `SELECT pg_terminate_backend(pid) `+committing)
	err := <-done
	t.Logf("apply terminated while it committed: %v", err)
	if err == nil || errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("apply terminated after its statement completed: %v; want an error of unknown outcome", err)
	}
}

// TestTerminatedUnderLoad: the store's sessions are terminated again and
// again (as a restart does) while writes run on every connection; each
// write is of keys of its own, at version 1. A write reported not applied
// (ErrNotApplied) must have stored none of its rows: the proxy logs an
// ABORT for it, and a row stored anyway would be a version without an
// event.
func TestTerminatedUnderLoad(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	app := fmt.Sprintf("wail_term_%d", time.Now().UnixNano())
	s := openFresh(t, false, func(o *Options) { o.DSN = withParam(t, dsn, "application_name", app); o.MaxConns = 4 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "tl"); err != nil {
		t.Fatal(err)
	}
	killer, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(context.Background())
	sqltest.EndedUnderLoad(t, s, "tl", func(ctx context.Context) (int, error) {
		tag, err := killer.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
		return int(tag.RowsAffected()), err
	})
}

// withParam returns dsn with the run-time parameter name set to value.
func withParam(t testing.TB, dsn, name, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + name + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}
