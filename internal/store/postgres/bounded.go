package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// SQLSTATEs of prepared statements.
const (
	codeDuplicatePrepared = "42P05" // duplicate_prepared_statement
	codeUndefinedPrepared = "26000" // invalid_sql_statement_name
	codeStalePrepared     = "0A000" // feature_not_supported: "cached plan must not change result type"
)

// preparedKey is the key of the set of statements boundQuery prepared on
// a connection, in its pgconn.PgConn.CustomData: the set lives and dies
// with the connection.
const preparedKey = "wail.prepared"

// maxPrepared bounds the statements boundQuery prepares on a connection
// (three per table: Apply, ScanKeys, GetMany); past it, a statement not
// prepared yet runs unnamed, as in cache_describe mode.
const maxPrepared = 256

// named reports whether boundQuery may leave named statements on conn:
// in pgx's default mode (cache_statement), which prepares what it runs;
// not in the others (cache_describe behind a pooler in transaction mode,
// which hands a named statement to the wrong backend, or loses it).
func named(conn *pgx.Conn) bool {
	return conn.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
}

// statementName is the name of query's prepared statement: a hash of its
// text, so one name is one text, and not pgx's prefix (stmtcache_).
func statementName(query string) string {
	sum := sha256.Sum256([]byte(query))
	return "wail_" + hex.EncodeToString(sum[:16])
}

// preparedSet returns the names of the statements prepared on conn.
func preparedSet(conn *pgconn.PgConn) map[string]bool {
	data := conn.CustomData()
	set, _ := data[preparedKey].(map[string]bool)
	if set == nil {
		set = map[string]bool{}
		data[preparedKey] = set
	}
	return set
}

// boundQuery runs query (parameters params, of types oids, in the binary
// format) on conn, bounded inside PostgreSQL by ctx's deadline (see
// sqlstore.Budget), and calls row with the columns of each row (binary
// format; valid during the call). It is one round trip: a pipeline (one
// implicit transaction, ended by its Sync) of boundSQL and then query, so
// the statement's parse, which takes the table's lock, comes after the
// bound and its wait counts against it (a statement prepared in a round
// trip of its own before escaped it: TestWriteBoundAfterPrepare).
//
// With prepare (pgx's default mode: named), query is a named statement
// (statementName), prepared in that same pipeline the first time on the
// connection, after the bound, and only executed afterwards: planned
// once, where an unnamed statement is planned at each execution (about a
// fifth of Apply's rate, 2.4 times GetMany's time per key: docs/
// benchmarks.md). A name counts as prepared once the server's answer to
// its Parse was read; an error whose outcome for the Parse is unknown
// leaves the connection closed by pgx, and its set with it. A statement
// already there (42P05) or gone (26000) stopped the pipeline before the
// query ran: it is run once more, as prepared, or prepared again. One
// whose result type changed (a column altered: 0A000, which the server
// answers at every later execution, keeping the statement) is
// deallocated and prepared again (TestPreparedAfterResultTypeChanged). Without
// prepare, or past maxPrepared statements on the connection, both
// statements are unnamed and nothing is left on the connection.
func boundQuery(ctx context.Context, conn *pgconn.PgConn, prepare bool, query string, params [][]byte, oids []uint32, row func([][]byte) error) error {
	if !prepare {
		return boundOnce(ctx, conn, "", false, query, params, oids, row)
	}
	name := statementName(query)
	set := preparedSet(conn)
	if !set[name] && len(set) >= maxPrepared {
		return boundOnce(ctx, conn, "", false, query, params, oids, row)
	}
	for again := false; ; again = true {
		err := boundOnce(ctx, conn, name, !set[name], query, params, oids, row)
		var pgErr *pgconn.PgError
		if again || !errors.As(err, &pgErr) {
			return err
		}
		switch pgErr.Code {
		case codeDuplicatePrepared:
			set[name] = true
		case codeUndefinedPrepared:
			delete(set, name)
		case codeStalePrepared:
			if conn.Deallocate(ctx, name) != nil {
				return err
			}
			delete(set, name)
		default:
			return err
		}
	}
}

// boundOnce is one pipeline of boundQuery: the statement named name
// (prepared first when prepare), or unnamed when name is "".
func boundOnce(ctx context.Context, conn *pgconn.PgConn, name string, prepare bool, query string, params [][]byte, oids []uint32, row func([][]byte) error) error {
	budget, err := sqlstore.Budget(ctx, time.Now())
	if err != nil {
		return notSent{fmt.Errorf("not sent: %w (%s)", context.DeadlineExceeded, err)}
	}
	p := conn.StartPipeline(ctx)
	p.SendQueryParams(boundSQL, [][]byte{[]byte(strconv.FormatInt(max(budget.Milliseconds(), 1), 10))}, []uint32{pgtype.TextOID}, nil, nil)
	switch {
	case name == "":
		p.SendQueryParams(query, params, oids, binary(len(oids)), binary(1))
	case prepare:
		p.SendPrepare(name, query, oids)
		fallthrough
	default:
		p.SendQueryPrepared(name, params, binary(len(oids)), binary(1))
	}
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return err
	}
	// Results in the order sent, up to the Sync's: after an ERROR the
	// server skips to the Sync, and so does GetResults. The first error
	// is the pipeline's.
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	completed := false // the statement's CommandComplete was read
	for queries := 0; ; {
		res, err := p.GetResults()
		if err != nil {
			fail(err)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				continue // the rest skipped, up to the Sync
			}
			break // the connection is lost (pgx closes it)
		}
		switch res := res.(type) {
		case *pgconn.StatementDescription:
			preparedSet(conn)[name] = true
		case *pgconn.ResultReader:
			queries++
			for res.NextRow() {
				if queries == 2 && first == nil {
					if err := row(res.Values()); err != nil {
						fail(err)
					}
				}
			}
			if _, err := res.Close(); err != nil {
				fail(err)
			} else if queries == 2 {
				completed = true
			}
		case *pgconn.PipelineSync:
			if err := p.Close(); err != nil {
				fail(err)
			}
			return ended(first, completed)
		case nil:
			fail(errors.New("pipeline ended before its sync"))
		}
		if res == nil {
			break
		}
	}
	if err := p.Close(); err != nil {
		fail(err)
	}
	return ended(first, completed)
}

// ended returns first, the first error of a pipeline, as notRun when it
// is the server ending the session (FATAL, PANIC: pg_terminate_backend, a
// shutdown, a restart, and for a connection that sat in the pool, the
// FATAL the server sent it then) before the statement completed. The
// pipeline's implicit transaction commits only at its Sync, after the
// statement's CommandComplete, which the server sends (flushing what it
// buffered) before any later FATAL: without it, the statement did not
// commit and never will (TestTerminatedWhileIdle). Only a FATAL the
// server sends when it ends a session counts (sessionEnd): a pooler's own
// (PgBouncer's "server conn crashed?", its query_timeout: 08P01) can come
// after the server committed, before the pooler passed the
// CommandComplete on, and leaves the outcome unknown (TestEnded).
func ended(first error, completed bool) error {
	var pgErr *pgconn.PgError
	if completed || !errors.As(first, &pgErr) {
		return first
	}
	switch severity(pgErr) {
	case "FATAL":
		if sessionEnd[pgErr.Code] {
			return notRun{first}
		}
	case "PANIC":
		return notRun{first}
	}
	return first
}

// sessionEnd holds the codes of the FATALs PostgreSQL sends when it ends
// a session: pg_terminate_backend or a shutdown (57P01), a crash of
// another backend (57P02), a start or recovery (57P03), idle_session_timeout
// (57P05), idle_in_transaction_session_timeout (25P03).
var sessionEnd = map[string]bool{"57P01": true, "57P02": true, "57P03": true, "57P05": true, "25P03": true}
