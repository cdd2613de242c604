package sqltest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// testWriteBound: a write that waits on a row lock another session holds
// is stopped by the database itself before the caller's deadline, and
// Apply says it was not applied (store.ErrNotApplied): it must not commit
// when the lock goes away later. The bound is the write's own: the next
// write, with time enough, waits for the lock and succeeds.
func testWriteBound[S Store](t *testing.T, c Config[S]) {
	dsn, _ := c.Fresh(t, 0)
	s := c.open(t, dsn, nil, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "wb"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	apply := func(ctx context.Context, v uint64) error {
		_, err := s.Apply(ctx, "wb", []store.Mutation{{Key: key, Value: []byte("v"), Version: v}})
		return err
	}
	if err := apply(ctx, 1); err != nil {
		t.Fatal(err)
	}
	lk := c.Locker(t, dsn, "wb")
	if err := lk.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The database's bound leaves a tenth of the time for the answer to
	// come back (sqlstore.Budget): 100 ms here, which a loaded machine
	// still meets (with 400 ms, 40 ms was missed at load 11).
	const deadline = time.Second
	wctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	err := apply(wctx, 2)
	took := time.Since(start)
	cancel()
	if err == nil || !errors.Is(err, store.ErrNotApplied) || took >= deadline {
		t.Fatalf("a write blocked by a row lock: %v after %s; want store.ErrNotApplied before the %s deadline", err, took, deadline)
	}
	t.Logf("a write blocked by a row lock failed after %s: %v", took.Round(time.Millisecond), err)
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a write still queued would commit now
	if row, _, err := s.Get(ctx, "wb", key, store.Level(len(s.Levels())-1)); err != nil || row.Version != 1 {
		t.Fatalf("after the lock was released the key holds version %d (%v), want 1: the write committed after it failed", row.Version, err)
	}

	if err := lk.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		done <- apply(wctx, 3)
	}()
	time.Sleep(2 * deadline) // longer than the first write's bound
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a write with time to wait for the lock: %v", err)
	}
}

// testCancelledWrite: a write the caller gives up on while it waits on a
// row lock. Where the database can still commit it on its own
// (PostgreSQL: the statement commits as it ends), Apply must not say it
// was not applied; where nothing commits without the COMMIT the store
// sends last (MySQL, MariaDB), it must, and the write must not show up
// when the lock goes away.
func testCancelledWrite[S Store](t *testing.T, c Config[S]) {
	dsn, _ := c.Fresh(t, 0)
	s := c.open(t, dsn, nil, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "c", []store.Mutation{{Key: []byte("k"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	lk := c.Locker(t, dsn, "c")
	if err := lk.Lock(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := s.Apply(wctx, "c", []store.Mutation{{Key: []byte("k"), Version: 2}})
	if err == nil || errors.Is(err, store.ErrNotApplied) == c.CancelledUnknown {
		t.Fatalf("write cancelled while it waited on a lock: %v; want an unknown outcome: %v", err, c.CancelledUnknown)
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	if c.CancelledUnknown {
		return
	}
	time.Sleep(100 * time.Millisecond)
	if row, _, err := s.Get(ctx, "c", []byte("k"), store.Level(len(s.Levels())-1)); err != nil || row.Version != 1 {
		t.Fatalf("the key holds version %d (%v) after the lock went away, want 1", row.Version, err)
	}
}

// testDDLBound: a DROP TABLE that waits for another session's open
// transaction on the table (a row lock here; any read would do) is
// stopped by the database itself before the caller's deadline. A bound
// kept only by the client (the driver closing the connection) left the
// statement waiting inside the database: on MariaDB for lock_wait_timeout
// (a day by default), after which it dropped the table the caller had been
// told was not dropped, and every statement on the table queued behind it
// meanwhile; on PostgreSQL it held the DDL lock every CreateTable and
// lease claim takes, for as long as the server did not see the cancel.
func testDDLBound[S Store](t *testing.T, c Config[S]) {
	dsn, _ := c.Fresh(t, 0)
	s := c.open(t, dsn, nil, 0)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "dd"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if _, err := s.Apply(ctx, "dd", []store.Mutation{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	lk := c.Locker(t, dsn, "dd")
	if err := lk.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	const deadline = time.Second
	dctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	err := s.DropTable(dctx, "dd")
	took := time.Since(start)
	cancel()
	if err == nil || took >= deadline {
		t.Fatalf("a DROP TABLE blocked by another session: %v after %s; want an error before the %s deadline", err, took, deadline)
	}
	t.Logf("a DROP TABLE blocked by another session failed after %s: %v", took.Round(time.Millisecond), err)
	// Another table's DDL does not wait for the failed one.
	cctx, cancel := context.WithTimeout(ctx, deadline)
	err = s.CreateTable(cctx, "other")
	cancel()
	if err != nil {
		t.Fatalf("CreateTable after a DROP TABLE that failed: %v", err)
	}
	time.Sleep(deadline + deadline/2) // past any bound a driver keeps
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a DROP still queued would run now
	row, found, err := s.Get(ctx, "dd", key, store.Level(len(s.Levels())-1))
	if err != nil || !found || row.Version != 1 {
		t.Fatalf("after the blocker ended: %+v found=%v err=%v; want the row at version 1: the DROP ran after it failed", row, found, err)
	}
	if err := s.DropTable(ctx, "dd"); err != nil {
		t.Fatalf("DropTable with nothing in its way: %v", err)
	}
}
