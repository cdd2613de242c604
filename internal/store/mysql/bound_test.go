package mysql

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestWriteErr: only an error of the COMMIT leaves the outcome unknown;
// before it, nothing can have committed.
func TestWriteErr(t *testing.T) {
	t.Parallel()
	var s Store
	ctx := t.Context()
	for _, tc := range []struct {
		err        error
		notApplied bool
	}{
		{context.DeadlineExceeded, true},
		{io.ErrUnexpectedEOF, true},
		{commitErr{io.ErrUnexpectedEOF}, false},
		{commitErr{context.DeadlineExceeded}, false},
	} {
		if got := s.writeErr(ctx, "t", tc.err); errors.Is(got, store.ErrNotApplied) != tc.notApplied {
			t.Errorf("writeErr(%v) = %v, want ErrNotApplied: %v", tc.err, got, tc.notApplied)
		}
	}
}

// TestCancelledWriteIsNotApplied: a write the caller gave up on before its
// COMMIT cannot commit, even if the server still runs its statement.
func TestCancelledWriteIsNotApplied(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 2, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "c", []store.Mutation{{Key: []byte("k"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	lk := sqltest.MySQLLocker(t, dsn, "c")
	if err := lk.Lock(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = s.Apply(wctx, "c", []store.Mutation{{Key: []byte("k"), Version: 2}})
	if !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("write cancelled while it waited on a lock: %v, want ErrNotApplied", err)
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if row, _, err := s.Get(ctx, "c", []byte("k"), 0); err != nil || row.Version != 1 {
		t.Fatalf("the key holds version %d (%v) after the lock went away, want 1", row.Version, err)
	}
}
