package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store/cassandra"
)

// openCassandraWith opens the Cassandra store of store.cassandra: the
// level names are parsed here, the rest is checked by cassandra.Open
// against the cluster. existing opens the keyspace as it is, creating
// nothing (cassandra.Options.Existing: wail doctor).
func openCassandraWith(ctx context.Context, s config.Store, logger *slog.Logger, existing bool) (*cassandra.Store, error) {
	opts, err := cassandraOptions(s)
	if err != nil {
		return nil, fmt.Errorf("open cassandra store: %w", err)
	}
	opts.Logger, opts.Existing = logger, existing
	st, err := cassandra.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open cassandra store: %w", err)
	}
	return st, nil
}

func cassandraOptions(s config.Store) (cassandra.Options, error) {
	c := s.Cassandra
	opts := cassandra.Options{
		Hosts: c.Hosts, Keyspace: c.Keyspace, LocalDC: c.LocalDC, InFlight: c.MaxInFlight,
		QueryTimeout: s.QueryTimeout, WriteRequestTimeout: c.WriteRequestTimeout,
	}
	var err error
	if len(c.Replication) > 0 {
		if opts.Replication, err = cassandra.ParseReplication(c.Replication); err != nil {
			return opts, fmt.Errorf("store.cassandra.replication: %w", err)
		}
	}
	if opts.Write, err = cassandra.ParseConsistency(c.WriteConsistency); err != nil {
		return opts, fmt.Errorf("store.cassandra.write_consistency: %w", err)
	}
	for table, name := range c.TableWriteConsistency {
		l, err := cassandra.ParseConsistency(name)
		if err != nil {
			return opts, fmt.Errorf("store.cassandra.table_write_consistency.%s: %w", table, err)
		}
		if opts.TableWrite == nil {
			opts.TableWrite = map[string]cassandra.Consistency{}
		}
		opts.TableWrite[table] = l
	}
	for i, name := range c.ReadLadder {
		l, err := cassandra.ParseConsistency(name)
		if err != nil {
			return opts, fmt.Errorf("store.cassandra.read_ladder[%d]: %w", i, err)
		}
		opts.ReadLadder = append(opts.ReadLadder, l)
	}
	return opts, nil
}

// clusterStore is a store on a cluster of nodes whose state doctor shows.
type clusterStore interface {
	Nodes(ctx context.Context) (cassandra.Cluster, error)
}

// doctorCluster prints the cluster and one line per node; it fails when
// a node does not answer or the nodes disagree on the schema.
func doctorCluster(ctx context.Context, st clusterStore, w io.Writer) error {
	c, err := st.Nodes(ctx)
	if err != nil {
		return err
	}
	agree := "yes"
	if !c.SchemaAgreement {
		agree = "NO"
	}
	fmt.Fprintf(w, "cluster      keyspace %s, replication %s, local data center %s, write bound %s, schema agreement %s\n",
		c.Keyspace, c.Replication.CQL(), c.LocalDC, c.WriteRequestTimeout, agree)
	var bad []string
	for _, n := range c.Nodes {
		state := "up"
		if !n.Up {
			state = "DOWN"
		}
		if !n.Answered {
			fmt.Fprintf(w, "node         FAIL %s %s/%s %s (driver), does not answer: %v\n", n.Address, n.DataCenter, n.Rack, state, n.Err)
			bad = append(bad, n.Address)
			continue
		}
		fmt.Fprintf(w, "node         %s %s/%s %s, Cassandra %s, schema %s, commitlog_sync %s, write_request_timeout %s",
			n.Address, n.DataCenter, n.Rack, state, n.Version, n.SchemaVersion, orUnknown(n.CommitlogSync), n.WriteRequestTimeout)
		if n.Err != nil {
			fmt.Fprintf(w, " (%v)", n.Err)
		}
		fmt.Fprintln(w)
	}
	switch {
	case len(bad) > 0:
		return fmt.Errorf("nodes %v do not answer", bad)
	case !c.SchemaAgreement:
		return errors.New("the nodes disagree on the schema")
	}
	return nil
}

// tableOptioner is a store whose tables' options doctor checks.
type tableOptioner interface {
	TableOptions(ctx context.Context) ([]cassandra.TableOptions, error)
}

// doctorReadRepair prints the read_repair option of wail's tables; it
// fails when a table has read_repair = 'NONE', naming the ALTER TABLE that
// sets it back. Tables whose option the cluster does not tell are reported,
// not failed.
func doctorReadRepair(ctx context.Context, st tableOptioner, w io.Writer) error {
	tables, err := st.TableOptions(ctx)
	if err != nil {
		return err
	}
	var blocking, unknown, none, alters []string
	for _, t := range tables {
		switch strings.ToUpper(t.ReadRepair) {
		case "BLOCKING":
			blocking = append(blocking, t.Table)
		case "NONE":
			q := t.Keyspace + "." + t.Table
			none = append(none, q)
			alters = append(alters, "ALTER TABLE "+q+" WITH read_repair = 'BLOCKING';")
		case "":
			unknown = append(unknown, t.Table+" (not told)")
		default:
			unknown = append(unknown, fmt.Sprintf("%s ('%s')", t.Table, t.ReadRepair))
		}
	}
	switch {
	case len(tables) == 0:
		fmt.Fprintf(w, "read_repair  ok (no wail tables)\n")
	case len(blocking) == len(tables):
		fmt.Fprintf(w, "read_repair  ok (BLOCKING on every wail table: %s)\n", strings.Join(blocking, ", "))
	case len(blocking) > 0:
		fmt.Fprintf(w, "read_repair  BLOCKING on %d of the %d wail tables: %s\n", len(blocking), len(tables), strings.Join(blocking, ", "))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(w, "read_repair  unknown on %s; wail needs 'BLOCKING' (a cluster before Cassandra 4.0 does not tell it)\n",
			strings.Join(unknown, ", "))
	}
	if len(none) == 0 {
		return nil
	}
	has := "has"
	if len(none) > 1 {
		has = "have"
	}
	return fmt.Errorf("%s %s read_repair = 'NONE': wail relies on blocking read repair (without it a write the resolver found on one replica only "+
		"could be published and then lost with that replica, and reads are not monotonic); run: %s",
		strings.Join(none, ", "), has, strings.Join(alters, " "))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
