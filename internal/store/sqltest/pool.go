package sqltest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// PoolStore is a store with the calls PoolExhausted checks.
type PoolStore interface {
	store.Store
	store.MultiGetter
	store.Scanner
}

// PoolExhausted checks the calls of s, whose pool holds one connection,
// taken by the caller (the database slow to answer them, or
// store.max_conns too small for the load), on table (created already):
// each waits for the connection past its deadline and must say that the
// wait was for a connection of the pool and name store.max_conns, not
// only "context deadline exceeded", as if the database had been slow to
// answer this call. The write was never sent (ErrNotApplied).
func PoolExhausted(t *testing.T, s PoolStore, table string) {
	t.Helper()
	k := [][]byte{[]byte("k")}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Apply", func(ctx context.Context) error {
			_, err := s.Apply(ctx, table, []store.Mutation{{Key: k[0], Value: []byte("v"), Version: 1}})
			if err != nil && !errors.Is(err, store.ErrNotApplied) {
				t.Errorf("apply waiting for a connection: %v; want ErrNotApplied", err)
			}
			return err
		}},
		{"Get", func(ctx context.Context) error { _, _, err := s.Get(ctx, table, k[0], 0); return err }},
		{"GetMany", func(ctx context.Context) error { _, err := s.GetMany(ctx, table, k, 0); return err }},
		{"ScanKeys", func(ctx context.Context) error { _, err := s.ScanKeys(ctx, table, nil, 10); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		err := c.call(ctx)
		cancel()
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), "store.max_conns") || !strings.Contains(err.Error(), "all 1 connections of its pool") {
			t.Errorf("%s with every connection of the pool in use: %v; want it to say so and name store.max_conns", c.name, err)
		}
	}
}
