package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestStartAgainAfterTheStoreOpened: a start attempt that fails after
// the store opened (reading the catalog or the logged versions timed out)
// runs again with that store, and the server comes up: nothing the first
// attempt registered is registered twice (a panic).
func TestStartAgainAfterTheStoreOpened(t *testing.T) {
	t.Parallel()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	cfg := testConfig(t)
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: dsn, MaxConns: 4, QueryTimeout: 5 * time.Second}
	var attempts atomic.Int32
	r := runServer(t, cfg, seams{afterStore: func() error {
		if attempts.Add(1) <= 2 {
			return fmt.Errorf("catalog: %w", store.ErrUnavailable)
		}
		return nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, err := r.put(ctx, "k", "v")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server never served after its start failed twice: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d start attempts, want 3", n)
	}
	if _, err := r.srv.registry.Gather(); err != nil {
		t.Fatal(err)
	}
}
