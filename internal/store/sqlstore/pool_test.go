package sqlstore

import (
	"context"
	"errors"
	"testing"
)

func TestPoolFull(t *testing.T) {
	t.Parallel()
	err := PoolFull("primary", 16, context.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap the wait's error", err)
	}
	if want := "no connection to the primary within the deadline: all 16 connections of its pool were in use (the database answers too slowly for the load, or store.max_conns is too small for it): context deadline exceeded"; err.Error() != want {
		t.Errorf("PoolFull = %q; want %q", err, want)
	}
}
