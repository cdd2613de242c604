package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestKilledUnderLoad: the store's connections are killed again and
// again (KILL CONNECTION, as a restart of the server ends them) while
// writes run on every connection; each write is of keys of its own, at
// version 1. A write reported not applied (ErrNotApplied: it failed
// before its COMMIT was sent) must have stored none of its rows: the
// proxy logs an ABORT for it.
func TestKilledUnderLoad(t *testing.T) {
	t.Parallel()
	dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
	s, err := Open(t.Context(), Options{DSN: dsn, Logger: quiet, MaxConns: 4})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "kl"); err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	killer, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	killer.SetMaxOpenConns(1)
	sqltest.EndedUnderLoad(t, s, "kl", func(ctx context.Context) (int, error) {
		rows, err := killer.QueryContext(ctx, `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()`, cfg.DBName)
		if err != nil {
			return 0, err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err == nil {
				ids = append(ids, id)
			}
		}
		_ = rows.Close()
		for _, id := range ids {
			_, _ = killer.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)) // gone already: no matter
		}
		return len(ids), nil
	})
}
