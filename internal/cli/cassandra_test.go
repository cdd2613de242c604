package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store/cassandra"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
)

// cassandraConfig writes a configuration whose store is keyspace ks of
// the test cluster, replicated 3 times, and returns its path.
func cassandraConfig(t *testing.T, ks string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := "store:\n  cassandra:\n    keyspace: " + ks + "\n    replication: {class: NetworkTopologyStrategy, " + cassandratest.DC() + ": 3}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDoctorCassandra: `wail doctor --store cassandra --hosts ...` (the
// flags of `wail serve`) shows the cluster, every node with its state, and
// schema agreement; a host that is not a node makes it fail. The keyspace
// is made first, as `wail serve` makes it at its first start (doctor
// makes none: TestDoctorCreatesNoKeyspace).
func TestDoctorCassandra(t *testing.T) {
	hosts := cassandratest.Hosts(t)
	ks := cassandratest.Keyspace(t, hosts)
	cfg := cassandraConfig(t, ks)
	ctx := context.Background()
	st, err := cassandra.Open(ctx, cassandra.Options{
		Hosts: hosts, Keyspace: ks, LocalDC: cassandratest.DC(), Replication: cassandra.Replication{cassandratest.DC(): 3},
		QueryTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut := runCLI(ctx, "", "", "doctor", "--timeout", "90s", "--config", cfg, "--data-dir", t.TempDir(), "--store", "cassandra", "--hosts", strings.Join(hosts, ","))
	if code != 0 || !strings.Contains(out, "store        ok (read levels [one local_quorum])") ||
		!strings.Contains(out, "cluster      keyspace "+ks+", replication {'class': 'NetworkTopologyStrategy', '"+cassandratest.DC()+"': 3}") ||
		!strings.Contains(out, "schema agreement yes") {
		t.Fatalf("doctor: code %d\n%s%s", code, out, errOut)
	}
	for _, h := range hosts {
		if !strings.Contains(out, "node         "+h+" "+cassandratest.DC()+"/rack1 up, Cassandra 5.") || !strings.Contains(out, "commitlog_sync batch") {
			t.Errorf("node %s missing or not up and batch:\n%s", h, out)
		}
	}
	if !strings.Contains(out, "read_repair  ok (BLOCKING on every wail table: wail__catalog)") {
		t.Errorf("read_repair of the catalog missing:\n%s", out)
	}
	t.Logf("\n%s", out)
	code, out, errOut = runCLI(ctx, "", "", "doctor", "--config", cfg, "--data-dir", t.TempDir(), "--store", "cassandra", "--hosts", "127.0.0.250")
	if code != 1 || !strings.Contains(out, "store        FAIL") || !strings.Contains(errOut, "failed checks: [store]") {
		t.Fatalf("doctor without a node: code %d\n%s%s", code, out, errOut)
	}
}

// TestDoctorCassandraReadRepair: a wail table altered to read_repair =
// 'NONE' fails doctor, which names the ALTER TABLE that sets it back;
// after running it, doctor passes.
func TestDoctorCassandraReadRepair(t *testing.T) {
	hosts := cassandratest.Hosts(t)
	ks := cassandratest.Keyspace(t, hosts)
	ctx := context.Background()
	st, err := cassandra.Open(ctx, cassandra.Options{
		Hosts: hosts, Keyspace: ks, LocalDC: cassandratest.DC(), Replication: cassandra.Replication{cassandratest.DC(): 3},
		QueryTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTable(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	c := gocql.NewCluster(hosts...)
	c.Timeout, c.ConnectTimeout = 30*time.Second, 10*time.Second
	admin, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Query("ALTER TABLE " + ks + ".wail_orders WITH read_repair = 'NONE'").Exec(); err != nil {
		t.Fatal(err)
	}
	cfg := cassandraConfig(t, ks)
	doctor := func() (int, string, string) {
		return runCLI(ctx, "", "", "doctor", "--timeout", "90s", "--config", cfg, "--data-dir", t.TempDir(), "--store", "cassandra",
			"--hosts", strings.Join(hosts, ","))
	}
	alter := "ALTER TABLE " + ks + ".wail_orders WITH read_repair = 'BLOCKING'"
	code, out, errOut := doctor()
	if code != 1 || !strings.Contains(out, "read_repair  BLOCKING on 2 of the 3 wail tables: wail__catalog, wail__generations\n") ||
		!strings.Contains(out, "read_repair  FAIL: "+ks+".wail_orders has read_repair = 'NONE': ") ||
		!strings.Contains(out, "run: "+alter+";\n") || !strings.Contains(errOut, "failed checks: [read_repair]") {
		t.Fatalf("doctor with read_repair = 'NONE': code %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	if err := admin.Query(alter).Exec(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = doctor()
	if code != 0 || !strings.Contains(out, "read_repair  ok (BLOCKING on every wail table: wail__catalog, wail__generations, wail_orders)") {
		t.Fatalf("doctor after %s: code %d\n%s%s", alter, code, out, errOut)
	}
}
