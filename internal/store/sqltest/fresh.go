package sqltest

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Defaults match scripts/services.sh.
const (
	PostgresDSN        = "postgres://wail:wail@127.0.0.1:5433/wail?sslmode=disable"
	PostgresReplicaDSN = "postgres://wail:wail@127.0.0.1:5434/wail?sslmode=disable"
	MySQLDSN           = "wail:wail@tcp(127.0.0.1:3307)/wail"
	// PostgresOtherDSN is a PostgreSQL server of a cluster of its own,
	// neither the primary nor a standby of it.
	PostgresOtherDSN = "postgres://wail:wail@127.0.0.1:5435/wail?sslmode=disable"
)

// Postgres returns the test PostgreSQL primary's DSN (see DSN).
func Postgres(t testing.TB) string {
	return DSN(t, "WAIL_TEST_PG_DSN", PostgresDSN, "127.0.0.1:5433", "PostgreSQL")
}

// PostgresReplica returns the test PostgreSQL replica's DSN (see DSN).
func PostgresReplica(t testing.TB) string {
	return DSN(t, "WAIL_TEST_PG_REPLICA_DSN", PostgresReplicaDSN, "127.0.0.1:5434", "PostgreSQL replica")
}

// PostgresOther returns the DSN of the test PostgreSQL server of another
// cluster (see DSN).
func PostgresOther(t testing.TB) string {
	return DSN(t, "WAIL_TEST_PG_OTHER_DSN", PostgresOtherDSN, "127.0.0.1:5435", "PostgreSQL of another cluster")
}

// MySQL returns the test MariaDB/MySQL DSN (see DSN).
func MySQL(t testing.TB) string {
	return DSN(t, "WAIL_TEST_MYSQL_DSN", MySQLDSN, "127.0.0.1:3307", "MariaDB/MySQL")
}

// ExecPostgres runs SQL on a short-lived connection.
func ExecPostgres(t testing.TB, dsn, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// PostgresSchema creates an empty schema, dropped when the test ends, and
// returns its name.
func PostgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	schema := Name("wail_test_")
	ExecPostgres(t, dsn, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { ExecPostgres(t, dsn, "DROP SCHEMA "+schema+" CASCADE") })
	return schema
}

// WithSearchPath returns dsn (URL or key=value form) with search_path set.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// ExecMySQL runs SQL on a short-lived connection.
func ExecMySQL(t testing.TB, dsn, query string) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// MySQLDatabase creates an empty database, dropped when the test ends, and
// returns the DSN that uses it.
func MySQLDatabase(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := Name("wail_test_")
	ExecMySQL(t, dsn, "CREATE DATABASE "+name)
	t.Cleanup(func() { ExecMySQL(t, dsn, "DROP DATABASE "+name) })
	cfg.DBName = name
	return cfg.FormatDSN()
}
