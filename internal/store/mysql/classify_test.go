package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
)

// TestClassify: which errors are the server unavailable (the resolver
// reads the next level, a writer retries), a missing table, or neither
// (a SQL error, or the caller's own cancellation, which is not the
// server's fault); and which a write retries at once (a lost lock race).
func TestClassify(t *testing.T) {
	t.Parallel()
	my := func(n uint16) error { return &mysql.MySQLError{Number: n} }
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
		{"max_statement_time the store set (MariaDB)", live, my(1969), store.ErrUnavailable, false},
		{"MAX_EXECUTION_TIME the store set (MySQL)", live, my(3024), store.ErrUnavailable, false},
		{"query interrupted", live, my(1317), store.ErrUnavailable, false},
		{"connection killed (MariaDB)", live, my(1927), store.ErrUnavailable, false},
		{"lock wait timeout after the retries", live, my(errLockWaitTimeout), store.ErrUnavailable, true},
		{"deadlock after the retries", live, my(errDeadlock), store.ErrUnavailable, true},
		{"too many connections", live, my(1040), store.ErrUnavailable, false},
		{"shutting down", live, my(1053), store.ErrUnavailable, false},
		{"the store's query timeout", live, fmt.Errorf("query: %w", context.DeadlineExceeded), store.ErrUnavailable, false},
		{"bad connection", live, driver.ErrBadConn, store.ErrUnavailable, false},
		{"invalid connection", live, mysql.ErrInvalidConn, store.ErrUnavailable, false},
		{"connection lost", live, io.ErrUnexpectedEOF, store.ErrUnavailable, false},
		{"missing table", live, my(errNoSuchTable), store.ErrUnknownTable, false},
		{"missing table, caller gone", ended, my(errNoSuchTable), store.ErrUnknownTable, false},
		{"a SQL error", live, my(1064), nil, false},
		{"a duplicate key", live, my(errDuplicateKey), nil, false},
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
	if got := closed.classify(live, my(1040)); !errors.Is(got, store.ErrClosed) {
		t.Errorf("classify after Close = %v, want ErrClosed", got)
	}
}
