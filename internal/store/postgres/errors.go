package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wail-cdc/wail/internal/store"
)

// SQLSTATE codes the store reacts to.
const (
	codeUndefinedTable       = "42P01"
	codeDeadlock             = "40P01"
	codeSerializationFailure = "40001"
	codeQueryCanceled        = "57014" // statement_timeout
	codeLockNotAvailable     = "55P03" // lock_timeout
)

// classify maps a driver error to the store's sentinels: store.ErrClosed
// after Close, store.ErrUnknownTable for a missing table, and
// store.ErrUnavailable for connection failures and timeouts (the store's
// own QueryTimeout, not a cancellation or deadline of the caller's ctx).
// Other errors (SQL errors) are returned as they are.
func (s *Store) classify(parent context.Context, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case s.closed.Load():
		return store.ErrClosed
	case errors.As(err, &pgErr) && pgErr.Code == codeUndefinedTable:
		return store.ErrUnknownTable
	case parent.Err() != nil:
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unavailable reports errors that say the server cannot be reached or
// cannot serve right now, as opposed to errors in what was asked.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		// 08: connection exception; 53: insufficient resources (too many
		// connections, out of memory or disk); 57P01-57P05: shutting
		// down, cannot connect now, idle timeouts; 40001/40P01: a lock
		// race that outlasted Apply's retries, or a replica cancelling a
		// read that conflicts with recovery; 57014/55P03: the statement or
		// lock timeout the store sets inside the server (the caller's own
		// cancellation is not classified: see classify).
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "57P") ||
			c == codeDeadlock || c == codeSerializationFailure || c == codeQueryCanceled || c == codeLockNotAvailable
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) ||
		errors.As(err, &netErr) ||
		pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}

// retryable: the statement lost a lock race and can simply run again
// (Apply is idempotent: last writer wins on the version).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeDeadlock || pgErr.Code == codeSerializationFailure)
}

// notSent is an error that came before the write was sent (no connection,
// no time left): the write did not happen.
type notSent struct{ err error }

func (e notSent) Error() string { return e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// notRun is the server ending the session (FATAL, PANIC) before the
// write's statement completed (boundOnce, ended): its transaction did
// not commit.
type notRun struct{ err error }

func (e notRun) Error() string { return e.err.Error() }
func (e notRun) Unwrap() error { return e.err }

// severity is err's severity, not localized.
func severity(err *pgconn.PgError) string {
	if err.SeverityUnlocalized != "" {
		return err.SeverityUnlocalized
	}
	return err.Severity
}

// definite reports whether err of a write says that it did not commit and
// will not: it was never sent, PostgreSQL answered with an ERROR, which
// rolls the write's transaction back (its own statement or lock timeout
// included), or ended the session (FATAL, PANIC) before the statement
// completed (notRun). Anything else (FATAL or PANIC after the statement
// completed, which can come after the commit; a connection lost; the
// caller's deadline, after which pgx closes the connection and the
// statement may still run) leaves the outcome unknown.
func definite(err error) bool {
	var ns notSent
	var nr notRun
	if errors.As(err, &ns) || errors.As(err, &nr) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return severity(pgErr) == "ERROR"
	}
	return false
}

// writeErr classifies the error of a write (see tableErr) and wraps
// store.ErrNotApplied when it is definite.
func (s *Store) writeErr(ctx context.Context, table string, err error) error {
	classified := s.tableErr(ctx, table, err)
	if definite(err) {
		return fmt.Errorf("%w: %w", store.ErrNotApplied, classified)
	}
	return classified
}
