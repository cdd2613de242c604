package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
)

// TestClassify: which errors are the server unavailable (the resolver
// reads the next level, a writer retries), a missing table, or neither
// (a SQL error, or the caller's own cancellation, which is not the
// server's fault); and which a write retries at once (a lost lock race).
func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code} }
	live := t.Context()
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name      string
		parent    context.Context
		err       error
		want      error // nil: neither sentinel
		retryable bool
	}{
		{"statement_timeout the store set", live, pg(codeQueryCanceled), store.ErrUnavailable, false},
		{"lock_timeout the store set", live, pg(codeLockNotAvailable), store.ErrUnavailable, false},
		{"deadlock after the retries", live, pg(codeDeadlock), store.ErrUnavailable, true},
		{"serialization failure (a replica's recovery conflict)", live, pg(codeSerializationFailure), store.ErrUnavailable, true},
		{"connection failure", live, pg("08006"), store.ErrUnavailable, false},
		{"too many connections", live, pg("53300"), store.ErrUnavailable, false},
		{"shutting down", live, &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, store.ErrUnavailable, false},
		{"the store's query timeout", live, fmt.Errorf("query: %w", context.DeadlineExceeded), store.ErrUnavailable, false},
		{"connection lost", live, io.ErrUnexpectedEOF, store.ErrUnavailable, false},
		{"connection closed", live, net.ErrClosed, store.ErrUnavailable, false},
		{"missing table", live, pg(codeUndefinedTable), store.ErrUnknownTable, false},
		{"missing table, caller gone", ended, pg(codeUndefinedTable), store.ErrUnknownTable, false},
		{"a SQL error", live, pg("42601"), nil, false},
		{"a unique violation", live, pg("23505"), nil, false},
		{"the caller's cancellation", ended, context.Canceled, nil, false},
		{"the caller's deadline", ended, context.DeadlineExceeded, nil, false},
	}
	for _, tc := range tests {
		var s Store
		got := s.classify(tc.parent, tc.err)
		for _, sentinel := range []error{store.ErrUnavailable, store.ErrUnknownTable, store.ErrClosed} {
			if errors.Is(got, sentinel) != (sentinel == tc.want) {
				t.Errorf("%s: classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
			}
		}
		if !errors.Is(got, tc.err) && tc.want != store.ErrUnknownTable {
			t.Errorf("%s: classify(%v) = %v, which lost the error", tc.name, tc.err, got)
		}
		if r := retryable(tc.err); r != tc.retryable {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, r, tc.retryable)
		}
	}
	var closed Store
	closed.closed.Store(true)
	if got := closed.classify(live, pg("08006")); !errors.Is(got, store.ErrClosed) {
		t.Errorf("classify after Close = %v, want ErrClosed", got)
	}
}
