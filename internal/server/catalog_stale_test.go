package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestWritesStopWhenTheCatalogIsStale: a process that cannot reload the
// table catalog (here the catalog's SQL table is locked, while the
// table's own rows can still be written) refuses writes once its copy is
// older than two catalog_refresh, and takes them again when a reload
// works: another process's drop (or alter) waits only that long for
// every process to see it, then removes the topics and rows under writes
// this one kept acknowledging. (It took writes with its last copy for as
// long as the reloads failed.)
func TestWritesStopWhenTheCatalogIsStale(t *testing.T) {
	t.Parallel()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.CatalogRefresh = 100 * time.Millisecond
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: dsn, MaxConns: 4, QueryTimeout: 500 * time.Millisecond}
	base, done, ready := starting(t, cfg)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("not ready within a minute")
	}
	if err := putT(base); err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE wail__catalog IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	for {
		err = putT(base)
		if err != nil && strings.Contains(err.Error(), "table catalog") {
			break
		}
		if time.Since(locked) > 10*time.Second {
			t.Fatalf("writes still answered %v %s after the catalog could no longer be read (catalog_refresh %s)", err, time.Since(locked).Round(time.Millisecond), cfg.CatalogRefresh)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("a write with a stale catalog: %v, want unavailable", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := healthz(t, base)
		if status == http.StatusServiceUnavailable && strings.Contains(body, "catalog: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz with a stale catalog: %d %q", status, body)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = putT(base); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume once the catalog could be read: %v", err)
		}
	}
	if status, body := healthz(t, base); status != http.StatusOK {
		t.Fatalf("/healthz once the catalog was read again: %d %q", status, body)
	}
}
