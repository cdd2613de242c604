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

// TestWriteBoundAfterPrepare: PostgreSQL's parse of the write's statement
// takes the table's lock, so behind another session's ACCESS EXCLUSIVE
// lock (an ALTER, a LOCK TABLE, a VACUUM FULL) it waits. pgx prepared the
// statement in a round trip of its own before the batch that bounds the
// write, the first time on each connection: that wait had no bound but
// the session's, and the budget, taken before it, gave the INSERT its
// whole time from when it started, after the wait. Here the write returned
// only at the caller's deadline, stopped by the client (its cancel
// request, which a process cut off from the database never gets there),
// not by the database: with the lock released at half the deadline and
// another session's lock queued behind the prepare, the INSERT waited on
// in the server past the deadline, outcome unknown; with the lock held
// past the deadline, the prepare did. The write must end before the
// deadline: stored, or stopped by the database's own timeout.
func TestWriteBoundAfterPrepare(t *testing.T) {
	t.Parallel()
	const deadline = time.Second
	for _, tc := range []struct {
		name    string
		release time.Duration // when the first lock goes
		next    bool          // another session's lock queued behind the write
		warm    bool          // the write's statement prepared on the connection already
	}{
		{"released at half the deadline, the next lock queued", deadline / 2, true, false},
		{"held past the deadline", 3 * deadline / 2, false, false},
		{"prepared already, held past the deadline", 3 * deadline / 2, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn, _ := freshDSNs(t, 0)
			s := openFresh(t, false, func(o *Options) { o.DSN, o.MaxConns = dsn, 1 })
			ctx := t.Context()
			if err := s.CreateTable(ctx, "pp"); err != nil {
				t.Fatal(err)
			}
			// The row, written by another session: the store's connection
			// has not run the write's statement yet.
			exec(t, dsn, `INSERT INTO `+tableIdent("pp")+` (key, value, version, deleted) VALUES ('k', 'v', 1, false)`)
			if tc.warm { // or by the store's: prepared once (TestWritesPreparedOnce)
				if _, err := s.Apply(ctx, "pp", []store.Mutation{{Key: []byte("w"), Value: []byte("v"), Version: 1}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := s.Get(ctx, "pp", []byte("k"), 0); err != nil { // the pool's connection, open
				t.Fatal(err)
			}
			lock := func() (pgx.Tx, chan error) {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				tx, err := c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				locked := make(chan error, 1)
				go func() {
					_, err := tx.Exec(ctx, `LOCK TABLE `+tableIdent("pp")+` IN ACCESS EXCLUSIVE MODE`)
					locked <- err
				}()
				return tx, locked
			}
			tx1, locked := lock()
			if err := <-locked; err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := s.Apply(wctx, "pp", []store.Mutation{{Key: []byte("k"), Value: []byte("v2"), Version: 2}})
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			var tx2 pgx.Tx
			var locked2 chan error
			if tc.next {
				// Queued behind the write's wait: granted as soon as the
				// prepare's transaction ends, before the write's batch.
				tx2, locked2 = lock()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(tc.release - 100*time.Millisecond):
				_ = tx1.Rollback(ctx)
				err = <-done
			}
			took := time.Since(start)
			_ = tx1.Rollback(ctx)
			if tx2 != nil {
				<-locked2 // granted once the others are gone; its session is then free
				_ = tx2.Rollback(ctx)
			}
			var pgErr *pgconn.PgError
			stopped := errors.Is(err, store.ErrNotApplied) && errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "timeout")
			if (err != nil && !stopped) || took >= deadline {
				t.Fatalf("a write behind a table lock: %v after %s; want it stored, or stopped by PostgreSQL's own lock or statement timeout, before the %s deadline",
					err, took.Round(time.Millisecond), deadline)
			}
			row, _, gerr := s.Get(ctx, "pp", []byte("k"), 0)
			if gerr != nil || (err == nil) != (row.Version == 2) {
				t.Fatalf("Apply: %v; the key holds version %d (%v)", err, row.Version, gerr)
			}
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// TestReadsLeaveNoPreparedStatements: with the DSN's
// default_query_exec_mode=cache_describe (what a pooler in transaction
// mode needs), reads (GetMany, Get, ScanKeys) leave no named prepared
// statement on the connection: GetMany sent its statement prepared
// whatever the mode, and a pooler (PgBouncer) hands such statements to
// another client's backend, or loses them. (In pgx's default mode reads
// are prepared, a statement per table and kind of read, planned once.)
func TestReadsLeaveNoPreparedStatements(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) {
		o.MaxConns = 1
		o.DSN += "&default_query_exec_mode=cache_describe"
	})
	ctx := t.Context()
	for _, table := range []string{"ps1", "ps2"} {
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: 1}}); err != nil {
			t.Fatal(err)
		}
		for n := 2; n <= 4; n++ {
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
	// The pool's only connection, the one the reads ran on.
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	rows, err := conn.Conn().PgConn().Exec(ctx, `SELECT name || ': ' || statement FROM pg_prepared_statements`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range rows[0].Rows {
		left = append(left, string(r[0]))
	}
	if len(left) > 0 {
		t.Fatalf("%d prepared statements left on the connection after reads of 2 tables:\n%s", len(left), strings.Join(left, "\n"))
	}
}
