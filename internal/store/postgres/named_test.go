package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
)

// preparedOn returns the statements prepared on the connection of s's
// primary pool (of one connection): name -> statement text.
func preparedOn(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	rows, err := conn.Conn().PgConn().Exec(ctx, `SELECT name, statement FROM pg_prepared_statements`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows[0].Rows {
		out[string(r[0])] = string(r[1])
	}
	return out
}

// TestWritesPreparedOnce: in pgx's default mode, Apply, ScanKeys and
// GetMany each run one named statement per table on a connection,
// prepared the first time (in their bounded round trip) and only executed
// afterwards: after many of each on one connection, exactly one prepared
// statement holds each one's text. Unnamed, a statement was planned at
// every execution (docs/benchmarks.md, "SQL read-backs").
func TestWritesPreparedOnce(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	for _, table := range []string{"po1", "po2"} {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		for v := uint64(1); v <= 8; v++ {
			if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}, {Key: []byte{byte(v)}, Value: []byte("w"), Version: v}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ScanKeys(ctx, table, nil, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetMany(ctx, table, [][]byte{[]byte("a"), {byte(v)}}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	prepared := preparedOn(t, s)
	for _, table := range []string{"po1", "po2"} {
		ident := tableIdent(table)
		for kind, sql := range map[string]string{"apply": applySQL(ident), "scan": scanSQL(ident), "get many": multiGetSQL(ident)} {
			var names []string
			for name, text := range prepared {
				if text == sql {
					names = append(names, name)
				}
			}
			if len(names) != 1 {
				t.Errorf("%s of %s: %d prepared statements with its text (%v); want 1", kind, table, len(names), names)
			}
		}
	}
	if t.Failed() {
		var all []string
		for name, text := range prepared {
			all = append(all, name+": "+strings.Join(strings.Fields(text), " "))
		}
		t.Logf("prepared on the connection:\n%s", strings.Join(all, "\n"))
	}
}

// TestPreparedAfterTableRecreated: a table dropped and created again
// under the same name while its statements are prepared on a connection:
// PostgreSQL analyzes a prepared statement again when a table it uses
// changes, so writes and reads on that connection reach the new table.
func TestPreparedAfterTableRecreated(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	const table = "rc"
	for round := uint64(1); round <= 3; round++ {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		for v := round * 10; v < round*10+3; v++ {
			out, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
			if err != nil || len(out) != 1 || !out[0].Applied {
				t.Fatalf("round %d: apply of version %d: %+v, %v", round, v, out, err)
			}
		}
		keys, err := s.ScanKeys(ctx, table, nil, 10)
		if err != nil || len(keys) != 1 || keys[0].Version != round*10+2 {
			t.Fatalf("round %d: scan: %+v, %v", round, keys, err)
		}
		reads, err := s.GetMany(ctx, table, [][]byte{[]byte("k"), []byte("x")}, 0)
		if err != nil {
			t.Fatalf("round %d: get many: %v", round, err)
		}
		if len(reads) != 2 || !reads[0].Found || reads[0].Row.Version != round*10+2 || reads[1].Found {
			t.Fatalf("round %d: get many: %+v", round, reads)
		}
		if err := s.DropTable(ctx, table); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPreparedSetOutOfStep: the set of names a connection has prepared
// out of step with the server, both ways: a statement deallocated behind
// the store's back (DEALLOCATE ALL: "does not exist", 26000) is prepared
// again, and one the set forgot ("already exists", 42P05) is executed as
// it is; the write goes through either way, once.
func TestPreparedSetOutOfStep(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "os"); err != nil {
		t.Fatal(err)
	}
	v := uint64(0)
	apply := func(what string) {
		t.Helper()
		v++
		out, err := s.Apply(ctx, "os", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
		if err != nil || len(out) != 1 || !out[0].Applied {
			t.Fatalf("%s: apply of version %d: %+v, %v", what, v, out, err)
		}
	}
	onConn := func(f func(c *pgconn.PgConn)) {
		conn, err := s.primary.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		f(conn.Conn().PgConn())
	}
	apply("first")
	onConn(func(c *pgconn.PgConn) {
		if _, err := c.Exec(ctx, "DEALLOCATE "+statementName(applySQL(tableIdent("os")))).ReadAll(); err != nil {
			t.Fatal(err)
		}
	})
	apply("deallocated")
	onConn(func(c *pgconn.PgConn) { delete(preparedSet(c), statementName(applySQL(tableIdent("os")))) })
	apply("forgotten")
	apply("again")
	n := 0
	for _, text := range preparedOn(t, s) {
		if text == applySQL(tableIdent("os")) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d statements of the write prepared; want 1", n)
	}
}

// TestPreparedAfterResultTypeChanged: a column a prepared statement
// returns changes type under it (here to a domain over its type, which
// the store reads as before). PostgreSQL refuses to execute the statement
// again ("cached plan must not change result type", 0A000) and keeps it:
// it must be prepared again, not fail every later read on the connection.
func TestPreparedAfterResultTypeChanged(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN, o.MaxConns = dsn, 1 })
	ctx := t.Context()
	const table = "rt"
	if err := s.CreateTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	read := func(what string) {
		t.Helper()
		keys, err := s.ScanKeys(ctx, table, nil, 10)
		if err != nil || len(keys) != 1 || keys[0].Version != 7 {
			t.Fatalf("%s: scan: %+v, %v", what, keys, err)
		}
		reads, err := s.GetMany(ctx, table, [][]byte{[]byte("k")}, 0)
		if err != nil || len(reads) != 1 || reads[0].Row.Version != 7 {
			t.Fatalf("%s: get many: %+v, %v", what, reads, err)
		}
	}
	read("prepared")
	exec(t, dsn, `CREATE DOMAIN rt_version AS bigint`)
	exec(t, dsn, `ALTER TABLE `+tableIdent(table)+` ALTER COLUMN version TYPE rt_version`)
	for i := range 3 {
		read(fmt.Sprintf("after the change, read %d", i+1))
	}
}

// TestPreparedThenExecuteFails: the pipeline that prepares the write's
// statement parses it and then fails executing it (a row lock held past
// the deadline: lock_timeout): the write is not applied, and says so; the
// statement stays prepared, and the next write on the connection runs it.
func TestPreparedThenExecuteFails(t *testing.T) {
	t.Parallel()
	s, _, tx := lockedRow(t, "pf")
	ctx := t.Context()
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := s.Apply(wctx, "pf", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 2}})
	cancel()
	if !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("apply behind a row lock: %v; want ErrNotApplied", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := versionAt(t, s, "pf", "k", 0); got != 1 {
		t.Fatalf("version %d after a write not applied; want 1", got)
	}
	for v := uint64(2); v <= 3; v++ {
		out, err := s.Apply(ctx, "pf", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: v}})
		if err != nil || !out[0].Applied {
			t.Fatalf("apply of version %d: %+v, %v", v, out, err)
		}
	}
	n := 0
	for _, text := range preparedOn(t, s) {
		if text == applySQL(tableIdent("pf")) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d statements of the write prepared; want 1", n)
	}
}

// TestConnectionLostMidPipeline: the session of a write is terminated
// while its pipeline waits (the statement prepared in it, behind a row
// lock): the FATAL comes before the statement completed, so the write
// did not commit and the error says ErrNotApplied (a FATAL after it
// completed leaves the outcome unknown: TestTerminatedAtCommit); the row
// keeps its version; the next write, on a new connection, prepares its
// statement there and goes through.
func TestConnectionLostMidPipeline(t *testing.T) {
	t.Parallel()
	s, dsn, tx := lockedRow(t, "lm")
	ctx := t.Context()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Apply(wctx, "lm", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 2}})
		done <- err
	}()
	// The write's session (the table's name is this test's alone).
	waiting := `FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ` + tableIdent("lm") + ` %'`
	eventually(t, "the write to wait for the row lock", func() bool { return queryString(t, dsn, `SELECT count(*) `+waiting) == "1" })
	exec(t, dsn, `SELECT pg_terminate_backend(pid) `+waiting)
	err := <-done
	t.Logf("apply whose session was terminated: %v", err)
	if !errors.Is(err, store.ErrNotApplied) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("apply whose session was terminated before its statement completed: %v; want ErrNotApplied and ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if v := queryString(t, dsn, `SELECT version::text FROM `+tableIdent("lm")+` WHERE key = 'k'`); v != "1" {
		t.Fatalf("version %s stored after a write reported not applied; want 1", v)
	}
	out, err := s.Apply(ctx, "lm", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 3}})
	if err != nil || !out[0].Applied {
		t.Fatalf("apply after the connection was lost: %+v, %v", out, err)
	}
}

// TestPreparedSetFull: past maxPrepared statements on a connection, a
// statement not prepared yet runs unnamed (nothing more left on the
// connection), and one prepared before still runs as prepared.
func TestPreparedSetFull(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	for _, table := range []string{"f1", "f2"} {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(table string, v uint64) {
		t.Helper()
		out, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v}})
		if err != nil || !out[0].Applied {
			t.Fatalf("apply of version %d to %s: %+v, %v", v, table, out, err)
		}
	}
	apply("f1", 1)
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set := preparedSet(conn.Conn().PgConn())
	for i := len(set); i < maxPrepared; i++ {
		set[fmt.Sprintf("filler_%d", i)] = true
	}
	conn.Release()
	for v := uint64(2); v <= 4; v++ {
		apply("f1", v)
		apply("f2", v)
	}
	prepared := preparedOn(t, s)
	count := func(table string) (n int) {
		for _, text := range prepared {
			if text == applySQL(tableIdent(table)) {
				n++
			}
		}
		return n
	}
	if count("f1") != 1 || count("f2") != 0 {
		t.Fatalf("statements of the writes prepared: %d of f1's (want 1), %d of f2's (want 0)", count("f1"), count("f2"))
	}
}

// lockedRow opens a store of one connection (on dsn) with table made and its row
// "k" at version 1, locked FOR UPDATE by another session's transaction
// (rolled back when the test ends, if the test has not).
func lockedRow(t *testing.T, table string) (*Store, string, pgx.Tx) {
	t.Helper()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN, o.MaxConns = dsn, 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, `INSERT INTO `+tableIdent(table)+` (key, value, version, deleted) VALUES ('k', 'v', 1, false)`)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+tableIdent(table)+` WHERE key = 'k' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	return s, dsn, tx
}
