package mysql

import (
	"context"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestLockWaitRestored: on MySQL 8 (DialectMySQL8) a write bounds its lock
// waits with SET SESSION innodb_lock_wait_timeout; the connection goes
// back to the pool with the session's own value (the server's, or the
// DSN's: the driver sets DSN parameters on connect), so that its next user
// (a lease claim's SELECT ... FOR UPDATE, a catalog swap) does not inherit
// a write's leftover budget. (The test server is MariaDB, which does not
// parse MySQL 8's row alias: the INSERT fails, but the SET SESSION before
// it has run, as it does on MySQL 8.)
func TestLockWaitRestored(t *testing.T) {
	t.Parallel()
	for _, dsnValue := range []string{"", "7"} {
		t.Run("dsn "+dsnValue, func(t *testing.T) {
			t.Parallel()
			dsn, _ := freshDSNs(t, 0)
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if dsnValue != "" {
				if cfg.Params == nil {
					cfg.Params = map[string]string{}
				}
				cfg.Params["innodb_lock_wait_timeout"] = dsnValue
			}
			s, err := Open(context.Background(), Options{DSN: cfg.FormatDSN(), MaxConns: 1, Dialect: DialectMySQL8, Logger: quiet})
			s = sqltest.Closing(t, s, err)
			ctx := t.Context()
			var before int
			if err := s.primary.QueryRowContext(ctx, "SELECT @@SESSION.innodb_lock_wait_timeout").Scan(&before); err != nil {
				t.Fatal(err)
			}
			if dsnValue == "7" && before != 7 {
				t.Fatalf("session innodb_lock_wait_timeout %d, want the DSN's 7", before)
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
		})
	}
}

// TestSessionInUTC: every connection's time zone is UTC whatever the DSN
// or the server says, so that the lease clock (UNIX_TIMESTAMP(NOW(6)))
// never goes back with daylight saving.
func TestSessionInUTC(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+05:00'"
	s, err := Open(context.Background(), Options{DSN: cfg.FormatDSN(), Logger: quiet})
	s = sqltest.Closing(t, s, err)
	var tz string
	if err := s.primary.QueryRowContext(t.Context(), "SELECT @@SESSION.time_zone").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	if tz != "+00:00" {
		t.Fatalf("session time zone %q, want +00:00", tz)
	}
}
