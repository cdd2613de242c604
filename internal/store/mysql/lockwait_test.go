package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestShortWriteWaitsForALock: a write whose deadline leaves less than a
// second still waits for a row lock held briefly by another session, up
// to its budget: innodb_lock_wait_timeout takes whole seconds, rounded
// up (the statement's max_statement_time bounds the rest); rounded down
// it is 0, which fails at once on any lock held, every retry alike.
func TestShortWriteWaitsForALock(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s := openFresh(t, 0, func(o *Options) { o.DSN = dsn })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "lw"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "lw", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	lk := sqltest.MySQLLocker(t, dsn, "lw")
	if err := lk.Lock(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		released <- lk.Release()
	}()
	wctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
	defer cancel()
	out, err := s.Apply(wctx, "lw", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 2}})
	if rerr := <-released; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil || !out[0].Applied {
		t.Fatalf("a write with 900ms left behind a row lock held 200ms: %+v, %v; want it applied once the lock went", out, err)
	}
}
