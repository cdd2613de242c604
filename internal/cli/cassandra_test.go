package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
)

// TestDoctorCassandra: `wail doctor --store cassandra --hosts ...` (the
// flags of `wail serve`) shows the cluster, every node with its state, and
// schema agreement; a host that is not a node makes it fail.
func TestDoctorCassandra(t *testing.T) {
	hosts := cassandratest.Hosts(t)
	ks := cassandratest.Keyspace(t, hosts)
	cfg := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := "store:\n  cassandra:\n    keyspace: " + ks + "\n    replication: {class: NetworkTopologyStrategy, " + cassandratest.DC() + ": 3}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
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
	t.Logf("\n%s", out)
	code, out, errOut = runCLI(ctx, "", "", "doctor", "--config", cfg, "--data-dir", t.TempDir(), "--store", "cassandra", "--hosts", "127.0.0.250")
	if code != 1 || !strings.Contains(out, "store        FAIL") || !strings.Contains(errOut, "failed checks: [store]") {
		t.Fatalf("doctor without a node: code %d\n%s%s", code, out, errOut)
	}
}
