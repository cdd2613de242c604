package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
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
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			rows, err := killer.QueryContext(ctx, `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()`, cfg.DBName)
			if err != nil {
				t.Errorf("list the store's connections: %v", err)
				return
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
				n++
			}
		}
	}()
	type result struct {
		keys []string
		err  error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				var muts []store.Mutation
				var keys []string
				for j := range 3 {
					k := fmt.Sprintf("w%d-%d-%d", w, i, j)
					keys = append(keys, k)
					muts = append(muts, store.Mutation{Key: []byte(k), Value: []byte("v"), Version: 1})
				}
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := s.Apply(wctx, "kl", muts)
				cancel()
				mu.Lock()
				results = append(results, result{keys, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	t.Logf("kills: %d", <-killed)
	var notApplied, unknown, ok int
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
			continue
		case errors.Is(r.err, store.ErrNotApplied):
			notApplied++
		default:
			unknown++ // the COMMIT was sent, or the connection went during it
			continue
		}
		for _, k := range r.keys {
			_, found, err := s.Get(ctx, "kl", []byte(k), 0)
			for err != nil && ctx.Err() == nil { // the kills are over: a retry gets a new connection
				_, found, err = s.Get(ctx, "kl", []byte(k), 0)
			}
			if found {
				t.Errorf("key %s stored by a write reported not applied: %v", k, r.err)
			}
		}
	}
	t.Logf("writes: %d applied, %d not applied, %d of unknown outcome", ok, notApplied, unknown)
}
