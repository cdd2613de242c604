package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestPoolExhausted: every connection of the pool is in use (the database
// slow to answer them, or store.max_conns too small for the load) and a
// write or a read waits for one past its deadline. The error said only
// "context deadline exceeded", as if the database had been slow to
// answer this call: it must say that the wait was for a connection of
// the pool, and name store.max_conns. The write was never sent
// (ErrNotApplied).
func TestPoolExhausted(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "px"); err != nil {
		t.Fatal(err)
	}
	held, err := s.primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	k := [][]byte{[]byte("k")}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"apply", func(ctx context.Context) error {
			_, err := s.Apply(ctx, "px", []store.Mutation{{Key: k[0], Value: []byte("v"), Version: 1}})
			if err != nil && !errors.Is(err, store.ErrNotApplied) {
				t.Errorf("apply waiting for a connection: %v; want ErrNotApplied", err)
			}
			return err
		}},
		{"get", func(ctx context.Context) error { _, _, err := s.Get(ctx, "px", k[0], 0); return err }},
		{"get many", func(ctx context.Context) error { _, err := s.GetMany(ctx, "px", k, 0); return err }},
		{"scan", func(ctx context.Context) error { _, err := s.ScanKeys(ctx, "px", nil, 10); return err }},
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.call(cctx)
		cancel()
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), "store.max_conns") || !strings.Contains(err.Error(), "all 1 connections") {
			t.Errorf("%s with every connection of the pool in use: %v; want it to say so and name store.max_conns", c.name, err)
		}
	}
}
