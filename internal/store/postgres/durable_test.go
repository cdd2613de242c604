package postgres

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// setting reads a server setting as a new session sees it.
func setting(t *testing.T, dsn, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNotDurableWarned: a server that acknowledges commits before they
// are on disk (fsync off) is named at Open, with what to set; a durable
// one is not. (The other cluster: its fsync is set and reset here; the
// test user may, scripts/services.sh.)
func TestNotDurableWarned(t *testing.T) {
	open := func(t *testing.T, dsn string) string {
		var out logbuf.Buffer
		s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 2,
			Logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		sqltest.Closing(t, s, err)
		return out.String()
	}
	const warning = "set fsync=on"
	t.Run("durable", func(t *testing.T) {
		dsn, _ := freshDSNs(t, 0)
		if out := open(t, dsn); strings.Contains(out, warning) {
			t.Fatalf("a durable server was warned of: %s", out)
		}
	})
	t.Run("fsync off", func(t *testing.T) {
		dsn := sqltest.PostgresOther(t)
		reload := func(value string) {
			if value == "" {
				sqltest.ExecPostgres(t, dsn, "ALTER SYSTEM RESET fsync")
			} else {
				sqltest.ExecPostgres(t, dsn, "ALTER SYSTEM SET fsync = "+value)
			}
			sqltest.ExecPostgres(t, dsn, "SELECT pg_reload_conf()")
			want := "on"
			if value != "" {
				want = value
			}
			for deadline := time.Now().Add(10 * time.Second); setting(t, dsn, "fsync") != want; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("fsync is not %s 10 s after the reload", want)
				}
			}
		}
		reload("off")
		t.Cleanup(func() { reload("") })
		dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
		out := open(t, dsn)
		if !strings.Contains(out, warning) || !strings.Contains(out, "fsync=off") {
			t.Fatalf("fsync off was not named at Open; the log:\n%s", out)
		}
	})
}
