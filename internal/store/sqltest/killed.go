package sqltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// EndedUnderLoad runs writes on every connection of s for 2 s while kill
// ends the store's sessions every 15 ms (as a restart of the database
// does; it returns how many it ended), each write of keys of its own at
// version 1 into table (created already). A write reported not applied
// (ErrNotApplied) must have stored none of its rows: the proxy logs an
// ABORT for it, and a row stored anyway would be a version without an
// event.
func EndedUnderLoad(t *testing.T, s store.Store, table string, kill func(ctx context.Context) (int, error)) {
	t.Helper()
	ctx := t.Context()
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
			k, err := kill(ctx)
			if err != nil {
				t.Errorf("end the store's sessions: %v", err)
				return
			}
			n += k
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
				_, err := s.Apply(wctx, table, muts)
				cancel()
				mu.Lock()
				results = append(results, result{keys, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	t.Logf("sessions ended: %d", <-killed)
	var notApplied, unknown, ok int
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
			continue
		case errors.Is(r.err, store.ErrNotApplied):
			notApplied++
		default:
			unknown++ // the commit was asked for, or the connection went during it
			continue
		}
		for _, k := range r.keys {
			_, found, err := s.Get(ctx, table, []byte(k), 0)
			for err != nil && ctx.Err() == nil { // the kills are over: a retry gets a new connection
				_, found, err = s.Get(ctx, table, []byte(k), 0)
			}
			if found {
				t.Errorf("key %s stored by a write reported not applied: %v", k, r.err)
			}
		}
	}
	t.Logf("writes: %d applied, %d not applied, %d of unknown outcome", ok, notApplied, unknown)
	if notApplied == 0 {
		t.Log("no write was reported not applied: nothing checked this run")
	}
}
