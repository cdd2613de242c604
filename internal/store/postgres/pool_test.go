package postgres

import (
	"testing"

	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestPoolExhausted: every connection of the pool is in use; a write and
// the reads waiting past their deadline for one say so and name
// store.max_conns (sqltest.PoolExhausted).
func TestPoolExhausted(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) { o.MaxConns = 1 })
	if err := s.CreateTable(t.Context(), "px"); err != nil {
		t.Fatal(err)
	}
	held, err := s.primary.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	sqltest.PoolExhausted(t, s, "px")
}
