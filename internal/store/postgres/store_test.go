package postgres

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func replicaDSN(t testing.TB) string { return sqltest.PostgresReplica(t) }

func exec(t testing.TB, dsn, sql string, args ...any) { sqltest.ExecPostgres(t, dsn, sql, args...) }

// freshDSNs returns the DSN of a fresh schema of the test database,
// dropped when the test ends, and for replicas > 0 that of the test
// replica (streaming, it has the schema too).
func freshDSNs(t testing.TB, replicas int) (string, []string) {
	dsn := sqltest.Postgres(t)
	var replicaDSNs []string
	if replicas > 0 {
		replicaDSNs = []string{replicaDSN(t)}
	}
	schema := sqltest.PostgresSchema(t, dsn)
	for i, r := range replicaDSNs {
		replicaDSNs[i] = sqltest.WithSearchPath(t, r, schema)
	}
	return sqltest.WithSearchPath(t, dsn, schema), replicaDSNs
}

// openFresh opens a store on a fresh schema of the test database, with the
// replica as level 0 when withReplica is set; tune may change the options.
func openFresh(t testing.TB, withReplica bool, tune ...func(*Options)) *Store {
	t.Helper()
	replicas := 0
	if withReplica {
		replicas = 1
	}
	dsn, replicaDSNs := freshDSNs(t, replicas)
	opts := Options{DSN: dsn, ReplicaDSNs: replicaDSNs, MaxConns: 8, Logger: quiet}
	for _, f := range tune {
		f(&opts)
	}
	s, err := Open(context.Background(), opts)
	return sqltest.Closing(t, s, err)
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, false) })
}

func TestSuiteWithReplica(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, true) })
}

// TestSQL runs the suite of the SQL stores, with the test server's
// streaming replica.
func TestSQL(t *testing.T) {
	sqltest.Run(t, sqltest.Config[*Store]{
		Fresh:    freshDSNs,
		Replicas: 1,
		Open: func(ctx context.Context, dsn string, replicaDSNs []string, timeout time.Duration) (*Store, error) {
			return Open(ctx, Options{DSN: dsn, ReplicaDSNs: replicaDSNs, MaxConns: 8, QueryTimeout: timeout, Logger: quiet})
		},
		DSN:      func(addr string) string { return "postgres://wail:wail@" + addr + "/wail?sslmode=disable" },
		MaxIdent: maxIdent,
		Locker:   sqltest.PostgresLocker,
		// The INSERT commits on its own when it ends.
		CancelledUnknown: true,
	})
}
