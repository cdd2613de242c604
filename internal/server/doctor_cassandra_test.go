package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
)

// TestDoctorCreatesNoKeyspace: `wail doctor` on a Cassandra store whose
// keyspace does not exist (a typo in store.cassandra.keyspace, a cluster
// wail never ran on) fails the store check saying so, and leaves the
// cluster as it found it. Before, doctor opened the store as wail serve
// does and created the keyspace (3 replicas) and wail's catalog table in
// it, then reported "store ok", "catalog ok (0 tables)" (hunt-v).
func TestDoctorCreatesNoKeyspace(t *testing.T) {
	t.Parallel()
	hosts := cassandratest.Hosts(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Store.Kind = config.StoreCassandra
	cfg.Store.Cassandra.Hosts, cfg.Store.Cassandra.LocalDC = hosts, cassandratest.DC()
	cfg.Store.Cassandra.Keyspace = cassandratest.Keyspace(t, hosts) // dropped at the end, should doctor make it
	var out bytes.Buffer
	err := server.Doctor(context.Background(), cfg, http.DefaultClient, "127.0.0.1:1", time.Minute, &out)
	if err == nil || !strings.Contains(out.String(), "keyspace "+cfg.Store.Cassandra.Keyspace+" does not exist") {
		t.Errorf("doctor: %v, want the store check failed on the missing keyspace:\n%s", err, out.String())
	}
	c := gocql.NewCluster(hosts...)
	c.Timeout, c.ConnectTimeout = 30*time.Second, 10*time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var name string
	err = s.Query("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", cfg.Store.Cassandra.Keyspace).Scan(&name)
	if err != gocql.ErrNotFound {
		t.Fatalf("keyspace %s after doctor: %q, %v; want it not made", cfg.Store.Cassandra.Keyspace, name, err)
	}
	// Once wail made it, doctor checks it as before.
	st, err := server.OpenStore(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out.Reset()
	_ = server.Doctor(context.Background(), cfg, http.DefaultClient, "127.0.0.1:1", time.Minute, &out)
	for _, want := range []string{"store        ok", "catalog      ok (0 tables)", "read_repair  ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor on the keyspace wail made: no %q in\n%s", want, out.String())
		}
	}
}
