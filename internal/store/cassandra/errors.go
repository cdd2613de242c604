package cassandra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// classify maps a driver error to the store's sentinels: store.ErrClosed
// after Close, store.ErrUnknownTable for a table Cassandra does not know,
// store.ErrUnavailable when the cluster cannot serve right now (not enough
// replicas alive, timeouts, overload, no connection), unless the caller's
// own context ended. Other errors (in what was asked) are returned as they
// are.
func (s *Store) classify(parent context.Context, err error) error {
	switch {
	case s.closed.Load() || errors.Is(err, gocql.ErrSessionClosed):
		return store.ErrClosed
	case unconfiguredTable(err):
		return fmt.Errorf("%w: %w", store.ErrUnknownTable, err)
	case parent.Err() != nil:
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unconfiguredTable: Cassandra does not know the table (4.x says
// "unconfigured table x", 5.0 "table x does not exist").
func unconfiguredTable(err error) bool {
	var re gocql.RequestError
	if !errors.As(err, &re) || re.Code() != gocql.ErrCodeInvalid {
		return false
	}
	m := re.Message()
	return strings.Contains(m, "unconfigured table") || strings.HasPrefix(m, "table ") && strings.HasSuffix(m, " does not exist")
}

// unavailable: errors that say the cluster cannot serve now, as opposed to
// errors in the request. A read failure is not one: a replica answered
// that it could not read the rows (too many tombstones, a guardrail, a
// corrupt sstable), which a retry does not cure and which the resolver
// dead-letters after its bounds, while it waits out an outage for as long
// as it lasts.
func unavailable(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeWriteFailure:
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrConnectionClosed) ||
		errors.Is(err, gocql.ErrTimeoutNoResponse) || errors.Is(err, gocql.ErrTooManyTimeouts) ||
		errors.Is(err, gocql.ErrNoStreams) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &netErr)
}

// notApplied reports whether a failed write certainly did not and never
// will take effect: it was never sent (no connection or stream to send it
// on), or the coordinator refused it before sending it to any replica (not
// enough replicas alive: Unavailable; a node still bootstrapping; an
// invalid, unauthorized or unprepared statement). A write timeout, a write
// failure, an overloaded coordinator (it may refuse after sending to some
// replicas), a lost connection or the caller's deadline leave the outcome
// unknown: some replicas may hold the write.
func notApplied(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeBootstrapping, gocql.ErrCodeSyntax, gocql.ErrCodeUnauthorized,
			gocql.ErrCodeInvalid, gocql.ErrCodeConfig, gocql.ErrCodeUnprepared:
			return true
		}
		return false
	}
	return errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrNoStreams) ||
		errors.Is(err, gocql.ErrSessionClosed) || errors.Is(err, gocql.ErrQueryArgLength)
}
