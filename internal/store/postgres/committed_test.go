package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/store"
)

// TestCommittedOutcomesKnown: once the batch's statement committed, Apply
// knows what every mutation did (RETURNING names the applied ones); only
// Outcome.Current of the losers needs a second read, which the contract
// lets a store leave at 0. When that read fails, Apply still answers each
// outcome: an error would tell every write of the (merged) batch "outcome
// unknown, write again". Here the read is held by an ACCESS EXCLUSIVE lock
// (an ALTER TABLE, a DROP, a VACUUM FULL) queued behind the write and
// granted at its commit.
func TestCommittedOutcomesKnown(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, false, func(o *Options) { o.DSN = dsn })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "cu"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "cu", []store.Mutation{{Key: []byte("a"), Value: []byte("a1"), Version: 1}, {Key: []byte("b"), Value: []byte("b5"), Version: 5}}); err != nil {
		t.Fatal(err)
	}
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	// Session 1 holds a's row lock: the write waits.
	rowLocker := connect()
	tx1, err := rowLocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx1.Exec(ctx, `SELECT 1 FROM `+tableIdent("cu")+` WHERE kh = sha256('a'::bytea) FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var outs []store.Outcome
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var err error
		outs, err = s.Apply(wctx, "cu", []store.Mutation{
			{Key: []byte("a"), Value: []byte("a2"), Version: 2}, // wins
			{Key: []byte("b"), Value: []byte("b1"), Version: 1}, // loses to 5
		})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the write waits on a's row lock
	// Session 2 asks for the table ACCESS EXCLUSIVE: queued behind both.
	tableLocker := connect()
	tx2, err := tableLocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() {
		_, err := tx2.Exec(ctx, `LOCK TABLE `+tableIdent("cu")+` IN ACCESS EXCLUSIVE MODE`)
		locked <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := tx1.Rollback(ctx); err != nil { // the write goes on and commits
		t.Fatal(err)
	}
	if err := <-locked; err != nil { // granted at the write's commit
		t.Fatal(err)
	}
	aerr := <-done
	_ = tx2.Rollback(ctx)
	row, _, err := s.Get(ctx, "cu", []byte("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply: %v (ErrNotApplied=%v); outcomes %+v; a now holds version %d", aerr, errors.Is(aerr, store.ErrNotApplied), outs, row.Version)
	if row.Version == 2 && aerr != nil {
		t.Fatalf("the write committed (a holds version 2, b kept 5) and Apply knows each outcome, but it reported an error of unknown outcome: %v", aerr)
	}
	if aerr == nil && (len(outs) != 2 || !outs[0].Applied || outs[0].Current != 2 || outs[1].Applied || (outs[1].Current != 0 && outs[1].Current != 5)) {
		t.Fatalf("outcomes %+v; want a applied at 2, b not applied (Current 0 or 5)", outs)
	}
}
