package mysql

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestRollbackWithinDeadline: a write that fails before its COMMIT (here:
// stopped by its own bound inside MariaDB while another session holds the
// row's lock) returns by its deadline, with store.ErrNotApplied, whatever
// the server does after it answered the failed statement: its ROLLBACK,
// which gets no answer here, is not waited for.
func TestRollbackWithinDeadline(t *testing.T) {
	t.Parallel()
	dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = silentAfter(t, cfg.Addr, "ROLLBACK")
	s, err := Open(t.Context(), Options{DSN: cfg.FormatDSN(), Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if _, err := s.Apply(ctx, "c", []store.Mutation{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	lk := sqltest.MySQLLocker(t, dsn, "c") // straight to the server, not through the relay
	if err := lk.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lk.Release() }()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := s.Apply(wctx, "c", []store.Mutation{{Key: key, Value: []byte("w"), Version: 2}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNotApplied) {
			t.Fatalf("a write stopped by its bound: %v after %s; want store.ErrNotApplied", err, time.Since(start))
		}
		t.Logf("returned after %s: %v", time.Since(start), err)
	case <-time.After(15 * time.Second):
		t.Fatalf("a write with a 1s deadline, stopped by its bound inside the server, still waits after 15s: its ROLLBACK got no answer")
	}
}
