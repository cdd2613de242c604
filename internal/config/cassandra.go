package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Cassandra configures the Cassandra store (store.kind cassandra). Level
// names (one, local_quorum, quorum, all, ...) are checked when the store
// opens, against the keyspace's replication.
type Cassandra struct {
	// Hosts are contact points, host or host:port (9042 by default).
	Hosts []string `yaml:"hosts"`
	// Keyspace holds wail's tables; created when missing.
	Keyspace string `yaml:"keyspace"`
	// LocalDC is this process's data center (requests go to its nodes,
	// LOCAL_* levels count its replicas); empty: the data center of the
	// first host that answers, refused when the nodes are in several.
	LocalDC string `yaml:"local_dc"`
	// Replication of the keyspace when wail creates it, as in CQL:
	// {class: NetworkTopologyStrategy, dc1: 3}. Empty: 3 replicas in the
	// local data center. An existing keyspace is left as it is.
	Replication map[string]string `yaml:"replication"`
	// WriteConsistency is the consistency level of every write, unless
	// TableWriteConsistency names one for its table.
	WriteConsistency string `yaml:"write_consistency"`
	// TableWriteConsistency is the write consistency level of some tables,
	// by table name (e.g. {orders: quorum}).
	TableWriteConsistency map[string]string `yaml:"table_write_consistency"`
	// ReadLadder are the resolver's read levels, cheapest first; the last
	// must overlap every write level (reads + writes > replicas).
	ReadLadder []string `yaml:"read_ladder"`
	// WriteRequestTimeout is the cluster's write_request_timeout, when the
	// nodes do not tell it (0: read from the nodes, else Cassandra's 2s).
	WriteRequestTimeout time.Duration `yaml:"write_request_timeout"`
	// MaxInFlight bounds the keys of one batch written at once.
	MaxInFlight int `yaml:"max_in_flight"`
}

func defaultCassandra() Cassandra {
	return Cassandra{Keyspace: "wail", WriteConsistency: "local_quorum", ReadLadder: []string{"one", "local_quorum"}, MaxInFlight: 64}
}

func (c Cassandra) validate() []error {
	var errs []error
	if len(c.Hosts) == 0 {
		errs = append(errs, errors.New("store.cassandra.hosts is required for store.kind cassandra"))
	}
	if c.Keyspace == "" {
		errs = append(errs, errors.New("store.cassandra.keyspace must not be empty"))
	}
	if c.WriteConsistency == "" || len(c.ReadLadder) == 0 {
		errs = append(errs, errors.New("store.cassandra.write_consistency and read_ladder must not be empty"))
	}
	for k, v := range c.Replication {
		if _, err := strconv.Atoi(v); k != "class" && err != nil {
			errs = append(errs, fmt.Errorf("store.cassandra.replication.%s: %q is not a replication factor", k, v))
		}
	}
	if len(c.Replication) > 0 && c.Replication["class"] == "" {
		errs = append(errs, errors.New("store.cassandra.replication needs a class (SimpleStrategy or NetworkTopologyStrategy)"))
	}
	if c.WriteRequestTimeout < 0 {
		errs = append(errs, errors.New("store.cassandra.write_request_timeout must not be negative"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, errors.New("store.cassandra.max_in_flight must be positive"))
	}
	return errs
}
