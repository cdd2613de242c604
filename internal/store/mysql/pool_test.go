package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestPoolExhausted: every connection of the pool is in use and a write
// waits for one past its deadline: the error must say that the wait was
// for a connection of the pool and name store.max_conns, not only
// "context deadline exceeded" (see the PostgreSQL store's test).
func TestPoolExhausted(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0, func(o *Options) { o.MaxConns = 1 })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "px"); err != nil {
		t.Fatal(err)
	}
	held, err := s.primary.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.Apply(wctx, "px", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}})
	t.Logf("apply: %v", err)
	if !errors.Is(err, store.ErrNotApplied) || !strings.Contains(err.Error(), "store.max_conns") || !strings.Contains(err.Error(), "all 1 connections") {
		t.Errorf("apply with every connection of the pool in use: %v; want ErrNotApplied, saying so and naming store.max_conns", err)
	}
}
