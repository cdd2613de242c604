package mysql

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestLockWaitRestored: on MySQL 8 (DialectMySQL8) a write bounds its lock
// waits with SET SESSION innodb_lock_wait_timeout; the connection goes
// back to the pool with the server's setting, so that its next user (a
// lease claim's SELECT ... FOR UPDATE, a catalog swap) does not inherit
// a write's leftover budget. (The test server is MariaDB, which does not
// parse MySQL 8's row alias: the INSERT fails, but the SET SESSION before
// it has run, as it does on MySQL 8.)
func TestLockWaitRestored(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 1, Dialect: DialectMySQL8, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	var before int
	if err := s.primary.QueryRowContext(ctx, "SELECT @@SESSION.innodb_lock_wait_timeout").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	_, aerr := s.Apply(ctx, "l", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}})
	t.Logf("Apply (MySQL 8 dialect on MariaDB): %v", aerr)
	var after int
	if err := s.primary.QueryRowContext(ctx, "SELECT @@SESSION.innodb_lock_wait_timeout").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("the pooled session's innodb_lock_wait_timeout is %d after a write, %d before: the write's bound leaked to the next user of the connection", after, before)
	}
}
