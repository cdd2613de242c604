package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestGetManyBound: a GetMany that waits on a lock (another session holds
// the table with LOCK TABLES ... WRITE) is stopped by the server itself
// (max_statement_time on MariaDB) before the caller's deadline, with
// MariaDB's "maximum statement execution time exceeded" (1969), not by the
// client giving up.
func TestGetManyBound(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0)
	if !s.mariadb {
		t.Skip("MySQL 8 bounds SELECTs with MAX_EXECUTION_TIME, which does not cover lock waits")
	}
	ctx := t.Context()
	if err := s.CreateTable(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "mb", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	conn, err := s.primary.Conn(ctx) // another session of the same pool's database
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "LOCK TABLES "+quote(tableName("mb"))+" WRITE"); err != nil {
		t.Fatal(err)
	}
	const deadline = 600 * time.Millisecond
	rctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	_, err = s.GetMany(rctx, "mb", [][]byte{[]byte("k")}, 0)
	took := time.Since(start)
	cancel()
	// The server's own timeout (1969), not the client's deadline: the
	// bound it was given came from the deadline, less a margin. (Not when
	// the answer arrived: on a loaded machine it can come a few
	// milliseconds after the deadline, 609 ms of 600 in a CI run.)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1969") {
		t.Fatalf("a read blocked by a table lock: %v after %s; want the server's statement timeout, set below the %s deadline", err, took, deadline)
	}
	t.Logf("a blocked read was stopped by the server after %s: %v", took.Round(time.Millisecond), err)
	if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	reads, err := s.GetMany(ctx, "mb", [][]byte{[]byte("k")}, 0)
	if err != nil || !reads[0].Found || reads[0].Row.Version != 1 {
		t.Fatalf("GetMany once the lock is gone: %+v, %v", reads, err)
	}
}
