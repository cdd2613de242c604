package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
)

// Server error numbers the store reacts to.
const (
	errNoSuchTable     = 1146
	errNoDatabase      = 1046 // no database selected
	errDuplicateKey    = 1062
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
)

// unavailableCodes: the server is busy, going away or killed the statement.
var unavailableCodes = map[uint16]bool{
	1040:               true, // too many connections
	1053:               true, // server shutdown in progress
	1077:               true, // normal shutdown
	1079:               true, // shutdown complete
	1152:               true, // aborted connection
	1158:               true, // network read error
	1159:               true, // network read timeout
	1160:               true, // network write error
	1161:               true, // network write timeout
	1317:               true, // query execution was interrupted
	1927:               true, // connection was killed (MariaDB)
	1969:               true, // max_statement_time exceeded (MariaDB)
	3024:               true, // max_execution_time exceeded (MySQL)
	errLockWaitTimeout: true,
	errDeadlock:        true, // only after the retries
}

// classify maps a driver error to the store's sentinels: store.ErrClosed
// after Close, store.ErrUnknownTable for a missing table, and
// store.ErrUnavailable for connection failures, timeouts (the store's own
// QueryTimeout, not the caller's ctx) and lock contention that outlasted
// the retries. Other errors are returned as they are.
func (s *Store) classify(parent context.Context, err error) error {
	var myErr *mysql.MySQLError
	isMy := errors.As(err, &myErr)
	switch {
	case s.closed.Load():
		return store.ErrClosed
	case isMy && myErr.Number == errNoSuchTable:
		return store.ErrUnknownTable
	case parent.Err() != nil:
		return err
	case isMy && unavailableCodes[myErr.Number], !isMy && unavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.As(err, &netErr)
}

// retryable: the transaction lost a lock race and can run again (Apply is
// idempotent: last writer wins on the version).
func retryable(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && (myErr.Number == errDeadlock || myErr.Number == errLockWaitTimeout)
}

// duplicateKey: an INSERT found the primary key taken.
func duplicateKey(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == errDuplicateKey
}
