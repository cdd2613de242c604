package schemaregistry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store/cassandra"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestSharedStores: the registry kept in a shared store's catalog
// (PostgreSQL, MySQL, Cassandra), by two processes (two store
// connections) at once, survives a reconnect. Needs the test databases
// (scripts/services.sh, scripts/cassandra.sh); skipped without them,
// failed under CI=true.
func TestSharedStores(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) func() Storage
	}{
		{"postgres", func(t *testing.T) func() Storage {
			dsn := sqltest.Postgres(t)
			dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
			return func() Storage {
				st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 4, QueryTimeout: 5 * time.Second})
				return Catalog(sqltest.Closing(t, st, err))
			}
		}},
		{"mysql", func(t *testing.T) func() Storage {
			dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
			return func() Storage {
				st, err := mysql.Open(context.Background(), mysql.Options{DSN: dsn, MaxConns: 4})
				return Catalog(sqltest.Closing(t, st, err))
			}
		}},
		{"cassandra", func(t *testing.T) func() Storage {
			hosts := cassandratest.Hosts(t)
			opts := cassandra.Options{Hosts: hosts, Keyspace: cassandratest.Keyspace(t, hosts), LocalDC: cassandratest.DC(),
				Replication: cassandra.Replication{cassandratest.DC(): 3}, QueryTimeout: 10 * time.Second,
				Logger: slog.New(slog.DiscardHandler)}
			return func() Storage {
				st, err := cassandra.Open(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return Catalog(st)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			open := tc.open(t)
			seen := checkShared(t, New(open(), Limits{}), New(open(), Limits{}))
			r := New(open(), Limits{})
			for id := range seen {
				if _, err := r.SchemaByID(t.Context(), id); err != nil {
					t.Fatalf("id %d from a new connection: %v", id, err)
				}
			}
		})
	}
}
