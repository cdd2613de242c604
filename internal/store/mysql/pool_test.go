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

// TestPoolExhaustedReads: as TestPoolExhausted, for the reads: Get,
// GetMany and ScanKeys waiting past their deadline for a connection of a
// full pool say so and name store.max_conns.
func TestPoolExhaustedReads(t *testing.T) {
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
	reads := []struct {
		name string
		read func(context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, _, err := s.Get(ctx, "px", []byte("k"), 0); return err }},
		{"GetMany", func(ctx context.Context) error {
			_, err := s.GetMany(ctx, "px", [][]byte{[]byte("k")}, 0)
			return err
		}},
		{"ScanKeys", func(ctx context.Context) error { _, err := s.ScanKeys(ctx, "px", nil, 10); return err }},
	}
	for _, r := range reads {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := r.read(rctx)
		cancel()
		t.Logf("%s: %v", r.name, err)
		if err == nil || !strings.Contains(err.Error(), "store.max_conns") || !strings.Contains(err.Error(), "all 1 connections of its pool") {
			t.Errorf("%s with every connection of the pool in use: %v; want it saying so and naming store.max_conns", r.name, err)
		}
	}
}
