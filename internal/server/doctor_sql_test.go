package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestDoctorCreatesNoSQLTables: `wail doctor` on a PostgreSQL schema or a
// MariaDB/MySQL database that wail never ran on (a DSN naming the wrong
// database, a search_path with a typo) fails the store check saying what
// is missing and what makes it, and leaves the database as it found it.
// Before, doctor opened the store as wail serve does: it created
// wail__catalog (and on MariaDB wail__identity), ran the column
// migration, then reported "store ok", "catalog ok (0 tables)" (hunt-f).
func TestDoctorCreatesNoSQLTables(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		base := sqltest.Postgres(t)
		schema := sqltest.PostgresSchema(t, base)
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Store.Kind = config.StorePostgres
		cfg.Store.DSN = sqltest.WithSearchPath(t, base, schema)
		tables := func() []string {
			return pgTables(t, base, schema)
		}
		doctorCreatesNothing(t, cfg, tables, "schema "+schema)
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Store.Kind = config.StoreMySQL
		cfg.Store.DSN = dsn
		tables := func() []string {
			return mysqlTables(t, dsn, mc.DBName)
		}
		doctorCreatesNothing(t, cfg, tables, "database "+mc.DBName)
	})
}

func doctorCreatesNothing(t *testing.T, cfg config.Config, tables func() []string, where string) {
	t.Helper()
	if got := tables(); len(got) != 0 {
		t.Fatalf("tables before doctor: %v", got)
	}
	var out bytes.Buffer
	err := server.Doctor(context.Background(), cfg, http.DefaultClient, "", time.Minute, &out)
	for _, want := range []string{"store        FAIL", "no table wail__catalog in " + where, "wail serve creates it"} {
		if err == nil || !strings.Contains(out.String(), want) {
			t.Errorf("doctor: %v, want the store check failed with %q:\n%s", err, want, out.String())
		}
	}
	if got := tables(); len(got) != 0 {
		t.Fatalf("tables after doctor: %v, want none made", got)
	}
	// Once wail made them, doctor checks them as before.
	st, err := server.OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out.Reset()
	_ = server.Doctor(context.Background(), cfg, http.DefaultClient, "", time.Minute, &out)
	for _, want := range []string{"store        ok", "catalog      ok (0 tables)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor on the schema wail made: no %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("doctor on the schema wail made failed a check:\n%s", out.String())
	}
}

func pgTables(t *testing.T, dsn, schema string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func mysqlTables(t *testing.T, dsn, db string) []string {
	t.Helper()
	h, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := h.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
