package catalog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/cassandra"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// pausingTopics is the log of idTopics whose first Unprovision pauses
// (its process stalls) until resume is closed: a drop past the saving of
// the topics' ids, before its deletions.
type pausingTopics struct {
	*idTopics
	*gate
}

func (p *pausingTopics) Unprovision(ctx context.Context, t Table) error {
	p.pass()
	return p.idTopics.Unprovision(ctx, t)
}

// sqlStore is a store of a database shared by processes.
type sqlStore interface {
	Backend
	Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error)
	Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error)
	Levels() []string
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sharedStores open two stores (two processes) on one fresh schema or
// database of the test servers.
var sharedStores = []struct {
	name string
	open func(t *testing.T) (a, b sqlStore)
}{
	{"postgres", func(t *testing.T) (a, b sqlStore) {
		dsn := sqltest.Postgres(t)
		dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
		open := func() sqlStore {
			s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, MaxConns: 4, Logger: quiet})
			return sqltest.Closing(t, s, err)
		}
		return open(), open()
	}},
	// A store whose drops are not fenced (DropTable by name, like
	// Cassandra's): the drop checks the entry first, which only narrows
	// the window (here the slower drop pauses before the check).
	{"unfenced", func(t *testing.T) (a, b sqlStore) {
		st := openStore(t)
		return st, st
	}},
	{"mysql", func(t *testing.T) (a, b sqlStore) {
		dsn := sqltest.MySQLDatabase(t, sqltest.MySQL(t))
		open := func() sqlStore {
			s, err := mysql.Open(t.Context(), mysql.Options{DSN: dsn, MaxConns: 4, Logger: quiet})
			return sqltest.Closing(t, s, err)
		}
		return open(), open()
	}},
	{"pinned", func(t *testing.T) (a, b sqlStore) { // Cassandra's generations, faked
		st := &genStore{Store: openStore(t)}
		return st, st
	}},
	{"cassandra", func(t *testing.T) (a, b sqlStore) {
		hosts := cassandratest.Hosts(t)
		opts := cassandra.Options{Hosts: hosts, Keyspace: cassandratest.Keyspace(t, hosts), LocalDC: cassandratest.DC(),
			Replication: cassandra.Replication{cassandratest.DC(): 3}, QueryTimeout: 10 * time.Second, Logger: quiet}
		open := func(coordinator string) sqlStore {
			o := opts
			o.Coordinators = []string{coordinator}
			s, err := cassandra.Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		return open(hosts[0]), open(hosts[len(hosts)-1])
	}},
}

// TestLateDropLeavesRowsOfTableCreatedAgain: two processes drop a table
// at about the same time, one finishes, the table is created again and
// takes a write; the slower drop, past the deletion of the topics (by
// their ids, which leaves the new table's), then dropped the store's
// table by name: the new table's, with the acknowledged write. On
// PostgreSQL it drops the rows only while the catalog holds the entry it
// is removing, checked in the transaction of the DROP; on MySQL and
// MariaDB under a lock of the table's name that CreateTable takes too. On
// Cassandra the slower drop moved on the generation of the table created
// again and dropped its table: every drop now drops the generation the
// first one saved in the entry (store.PinnedDropper).
func TestLateDropLeavesRowsOfTableCreatedAgain(t *testing.T) {
	t.Parallel()
	for _, c := range sharedStores {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stFast, stSlow := c.open(t)
			lateRowsDrop(t, stFast, stSlow)
		})
	}
}

func lateRowsDrop(t *testing.T, stFast, stSlow sqlStore) {
	ctx := t.Context()
	log := newIDTopics()
	slowLog := &pausingTopics{idTopics: log, gate: newGate()}
	refresh := func(o *Options) { o.Refresh = 10 * time.Millisecond }
	fast := openCatalog(t, stFast, log, refresh)
	slow := openCatalog(t, stSlow, slowLog, refresh)
	if _, _, err := fast.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{0, 0}}, committed: []int64{0, 0}}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Drop(ctx, "t", true, h.hooks()) }()
	select {
	case <-slowLog.entered:
	case err := <-slowDone:
		t.Fatalf("the slow drop ended before deleting the topics: %v", err)
	}
	if err := fast.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatalf("the fast drop: %v", err)
	}
	created, _, err := fast.Create(ctx, Table{Name: "t", Partitions: 2})
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	mut := store.Mutation{Key: []byte("k"), Value: []byte("acknowledged"), Version: 1}
	if _, err := stFast.Apply(ctx, "t", []store.Mutation{mut}); err != nil {
		t.Fatalf("a write to the table created again: %v", err)
	}
	close(slowLog.proceed)
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow drop: %v", err)
	}
	row, found, err := stFast.Get(ctx, "t", []byte("k"), store.Level(len(stFast.Levels())-1))
	switch {
	case errors.Is(err, store.ErrUnknownTable):
		t.Fatal("the slow drop, late, dropped the store table of the table created again, with its acknowledged write")
	case err != nil:
		t.Fatalf("read of the acknowledged write: %v", err)
	case !found || string(row.Value) != "acknowledged":
		t.Fatalf("the acknowledged write reads %+v (found %v)", row, found)
	}
	if s, ok := saved(t, stFast, "t"); !ok || s.State != Ready || !s.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("after the slow drop the entry of t is %+v (found %v), want the table created again, ready", s, ok)
	}
}
