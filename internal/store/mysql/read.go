package mysql

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Reads (Get, GetMany, ScanKeys) are one query each in the text protocol:
// their keys (or key hashes) are hexadecimal literals (X'…', binary
// strings that nothing in a key can break out of) and their bound is part
// of the text. So
//   - each is one round trip, and leaves no prepared statement on the
//     connection: with interpolateParams=false a query with parameters is
//     a prepare, an execute and a close, and Get's statements, prepared
//     once per read level and table and kept, were left on every
//     connection they ran on (levels × tables × connections, against the
//     server-wide max_prepared_stmt_count: 16382 by default, 512 tables
//     with 16 connections and a replica; then every client of the server
//     that prepares fails, Error 1461);
//   - each is bounded inside the server by the time the caller's deadline
//     and the store's query timeout leave, less a margin (boundedRead): a
//     statement whose caller gave up does not go on inside the server,
//     waiting for a metadata lock (DDL, LOCK TABLES) with every later
//     statement on the table queued behind it. Get had only the session's
//     bound (the whole query timeout), ScanKeys set the whole query
//     timeout whatever the caller's deadline.

// hexLiteral is b as a binary string literal.
func hexLiteral(b []byte) string {
	if len(b) == 0 {
		return "X''"
	}
	return "X'" + hex.EncodeToString(b) + "'"
}

// boundedRead returns the SELECT q bounded inside the server by the time
// ctx has left (sqlstore.Budget): MariaDB's SET STATEMENT
// max_statement_time, which also stops a wait for a metadata lock, or
// MySQL's MAX_EXECUTION_TIME hint, which bounds the execution only; on
// MySQL 8 (DialectMySQL8) a SET_VAR hint bounds the wait for the table's
// metadata lock too (lock_wait_timeout, whole seconds rounded up; MySQL
// 5.7 keeps the session's). It fails, as a deadline exceeded, when too
// little time is left to send it.
func (s *Store) boundedRead(ctx context.Context, q string) (string, error) {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return "", fmt.Errorf("read not sent: %w", context.DeadlineExceeded)
	}
	if budget == 0 {
		return q, nil // no deadline: the session's bound
	}
	ms := max(budget.Milliseconds(), 1)
	if s.mariadb {
		return "SET STATEMENT max_statement_time=" + strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) + " FOR " + q, nil
	}
	hint := "MAX_EXECUTION_TIME(" + strconv.FormatInt(ms, 10) + ")"
	if s.dialect == DialectMySQL8 {
		hint += " SET_VAR(lock_wait_timeout=" + strconv.FormatInt(int64(math.Ceil(budget.Seconds())), 10) + ")"
	}
	return "SELECT /*+ " + hint + " */" + q[len("SELECT"):], nil
}
