package config

import (
	"strings"
	"testing"
	"time"
)

func TestCassandra(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(*testing.T, Config)
	}{
		{name: "defaults", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1, c2:9043]\n", check: func(t *testing.T, c Config) {
			cs := c.Store.Cassandra
			if c.Store.Kind != StoreCassandra || len(cs.Hosts) != 2 || cs.Keyspace != "wail" || cs.WriteConsistency != "local_quorum" ||
				strings.Join(cs.ReadLadder, ",") != "one,local_quorum" || cs.MaxInFlight != 64 || cs.WriteRequestTimeout != 0 {
				t.Fatalf("%+v", cs)
			}
		}},
		{name: "everything", yaml: `store:
  kind: cassandra
  cassandra:
    hosts: [c1]
    keyspace: cdc
    local_dc: dc2
    replication: {class: NetworkTopologyStrategy, dc1: 3, dc2: 3}
    write_consistency: each_quorum
    table_write_consistency: {orders: quorum}
    read_ladder: [local_one, local_quorum, all]
    write_request_timeout: 1500ms
    max_in_flight: 8
`, check: func(t *testing.T, c Config) {
			cs := c.Store.Cassandra
			if cs.Keyspace != "cdc" || cs.LocalDC != "dc2" || cs.Replication["dc2"] != "3" || cs.TableWriteConsistency["orders"] != "quorum" ||
				len(cs.ReadLadder) != 3 || cs.WriteRequestTimeout != 1500*time.Millisecond || cs.MaxInFlight != 8 {
				t.Fatalf("%+v", cs)
			}
		}},
		{name: "hosts required", yaml: "store:\n  kind: cassandra\n", wantErr: "store.cassandra.hosts is required"},
		{name: "hosts need the kind", yaml: "store:\n  cassandra:\n    hosts: [c1]\n", wantErr: "store.cassandra.hosts needs store.kind cassandra"},
		{name: "no dsn", yaml: "store:\n  kind: cassandra\n  dsn: x\n  cassandra:\n    hosts: [c1]\n", wantErr: "store.dsn and store.replica_dsns need store.kind postgres or mysql"},
		{name: "empty ladder", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\n    read_ladder: []\n", wantErr: "read_ladder must not be empty"},
		{name: "bad factor", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\n    replication: {class: SimpleStrategy, replication_factor: three}\n", wantErr: `replication.replication_factor: "three"`},
		{name: "no class", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\n    replication: {dc1: 3}\n", wantErr: "replication needs a class"},
		{name: "in flight", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\n    max_in_flight: 0\n", wantErr: "max_in_flight must be positive"},
		{name: "negative bound", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\n    write_request_timeout: -1s\n", wantErr: "write_request_timeout must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(write(t, tc.yaml))
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				tc.check(t, c)
			}
		})
	}
}
