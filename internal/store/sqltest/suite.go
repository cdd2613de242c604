// The suite the SQL stores (postgres, mysql) pass besides storetest's:
// what a SQL store must get right beyond the store.Store contract, namely
// hostile and long table names, the versions it reports, replicas as read
// levels, Check, servers that are down, and writes bounded inside the
// database by the caller's deadline. A store's test calls Run with a
// Config that opens fresh, empty stores (a new database or schema each) and
// says what differs between the databases.

package sqltest

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Store is a SQL store under test.
type Store interface {
	store.Store
	// Check verifies that the primary and every replica answer.
	Check(ctx context.Context) error
}

// lagger is a store that reports how far its replicas trail (postgres):
// the suite checks ReplicaLag where Store has it.
type lagger interface {
	ReplicaLag(ctx context.Context) ([]time.Duration, error)
}

// Config is what Run needs to know of the store under test, an S.
type Config[S Store] struct {
	// Fresh returns the DSN of a fresh, empty database (or schema) on the
	// test server, dropped when the test ends, and the DSNs of replicas
	// replicas that serve it.
	Fresh func(t testing.TB, replicas int) (dsn string, replicaDSNs []string)
	// Replicas is how many replicas Fresh can give: at least 1.
	Replicas int
	// Open opens a store on the primary at dsn with the replicas at
	// replicaDSNs and a query timeout (0: the store's default).
	Open func(ctx context.Context, dsn string, replicaDSNs []string, timeout time.Duration) (S, error)
	// DSN returns the DSN of a server at addr.
	DSN func(addr string) string
	// MaxIdent is the database's longest identifier, in bytes.
	MaxIdent int
	// Locker opens another session on dsn that locks rows of a wail table.
	Locker func(t testing.TB, dsn, table string) RowLocker
	// CancelledUnknown: a write the caller cancelled while the database
	// ran it may still commit (its outcome is unknown), as on PostgreSQL;
	// false where nothing commits before the store's COMMIT (MySQL).
	CancelledUnknown bool
}

// Run runs the suite; each test opens its own stores.
func Run[S Store](t *testing.T, c Config[S]) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c Config[S])
	}{
		{"Levels", testLevels[S]},
		{"Injection", testInjection[S]},
		{"LongNames", testLongNames[S]},
		{"Current", testCurrent[S]},
		{"Closed", testClosed[S]},
		{"Unavailable", testUnavailable[S]},
		{"WriteBound", testWriteBound[S]},
		{"CancelledWrite", testCancelledWrite[S]},
		{"DDLBound", testDDLBound[S]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, c)
		})
	}
}

// fresh opens a store on a fresh database with replicas replicas.
func (c Config[S]) fresh(t *testing.T, replicas int) S {
	dsn, replicaDSNs := c.Fresh(t, replicas)
	return c.open(t, dsn, replicaDSNs, 0)
}

// open opens a store on the DSNs with a query timeout.
func (c Config[S]) open(t *testing.T, dsn string, replicaDSNs []string, timeout time.Duration) S {
	t.Helper()
	s, err := c.Open(context.Background(), dsn, replicaDSNs, timeout)
	return Closing(t, s, err)
}

// Closing returns s, a store the test opened, and closes it when the test
// ends (before the fresh database is dropped), or fails the test on err,
// the error of opening it.
func Closing[S Store](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
