package cassandra

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// Node is one node of the cluster as the store sees it.
type Node struct {
	Address    string
	DataCenter string
	Rack       string
	HostID     string
	// Up is the driver's view (gossip events and its connections).
	Up bool
	// Answered: the node answered a query sent to it just now; Err says
	// why not.
	Answered bool
	Err      error
	// Version is the node's release; SchemaVersion its schema version
	// (every node that answers must agree).
	Version       string
	SchemaVersion string
	// CommitlogSync (batch, group or periodic) and WriteRequestTimeout
	// are the node's settings (system_views.settings), when it tells them.
	CommitlogSync       string
	WriteRequestTimeout time.Duration
	// MaxFrameSize (native_transport_max_frame_size) and MaxMutationSize
	// (max_mutation_size), in bytes, bound one request and one row
	// (limits.go); 0 when the node does not tell.
	MaxFrameSize, MaxMutationSize int64
}

// Cluster is what Nodes reports.
type Cluster struct {
	Nodes []Node
	// SchemaAgreement: every node that answered has the same schema version.
	SchemaAgreement bool
	Keyspace        string
	Replication     Replication
	LocalDC         string
	// WriteRequestTimeout is the bound the store uses (the largest any
	// node told, or the configured one).
	WriteRequestTimeout time.Duration
}

// Nodes asks every node the driver knows about itself: release, schema
// version, commit log mode and write_request_timeout.
func (s *Store) Nodes(ctx context.Context) (Cluster, error) {
	c := Cluster{Keyspace: s.ks, Replication: s.replication, LocalDC: s.localDC, WriteRequestTimeout: s.writeBound()}
	if err := s.checkOpen(); err != nil {
		return c, fmt.Errorf("cassandra: nodes: %w", err)
	}
	schemas := map[string]bool{}
	for _, h := range s.policy.known() {
		n := Node{Address: h.ConnectAddress().String(), DataCenter: h.DataCenter(), Rack: h.Rack(), HostID: h.HostID(), Up: h.IsUp()}
		s.askNode(ctx, h, &n)
		if n.Answered {
			schemas[n.SchemaVersion] = true
		}
		c.Nodes = append(c.Nodes, n)
	}
	c.SchemaAgreement = len(schemas) == 1
	return c, nil
}

// askNode reads system.local and the settings wail depends on from node h.
func (s *Store) askNode(ctx context.Context, h *gocql.HostInfo, n *Node) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	qctx = onHost(qctx, h)
	var schema gocql.UUID
	err := s.session.Query("SELECT release_version, schema_version FROM system.local").WithContext(qctx).
		Consistency(gocql.One).Scan(&n.Version, &schema)
	if err != nil {
		n.Err = s.classify(ctx, err)
		return
	}
	n.Answered, n.SchemaVersion = true, schema.String()
	iter := s.session.Query(settingsStmt).WithContext(qctx).Consistency(gocql.One).Iter()
	var name, value string
	for iter.Scan(&name, &value) {
		nodeSetting(n, name, value)
	}
	if err := iter.Close(); err != nil {
		n.Err = fmt.Errorf("system_views.settings: %w", s.classify(ctx, err))
	}
}

// settingsStmt reads the settings of one node that wail depends on
// (nodeSetting), under the names of Cassandra 4.1 and later (with units)
// and of 4.0 (write_request_timeout_in_ms, max_mutation_size_in_kb, ...),
// which the later releases list too.
const settingsStmt = "SELECT name, value FROM system_views.settings WHERE name IN ('commitlog_sync', 'write_request_timeout', " +
	"'write_request_timeout_in_ms', 'native_transport_max_frame_size', 'native_transport_max_frame_size_in_mb', 'max_mutation_size', " +
	"'max_mutation_size_in_kb')"

// nodeSetting records setting name of node n, a row of settingsStmt; of
// a setting told under both names, the one with units wins.
func nodeSetting(n *Node, name, value string) {
	if sizeSetting(n, name, value) {
		return
	}
	switch name {
	case "commitlog_sync":
		n.CommitlogSync = value
	case "write_request_timeout", "write_request_timeout_in_ms":
		if name != "write_request_timeout" && n.WriteRequestTimeout > 0 {
			return
		}
		d, err := parseCassandraDuration(value) // a number alone: milliseconds
		if err != nil {
			n.Err = fmt.Errorf("%s %q: %w", name, value, err)
			return
		}
		n.WriteRequestTimeout = d
	}
}

// parseCassandraDuration reads a duration as Cassandra prints its
// settings: "2000ms", "2s", "1m", also "2000" (milliseconds).
func parseCassandraDuration(v string) (time.Duration, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return 0, errors.New("empty")
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		v += "ms"
	}
	v = strings.NewReplacer("milliseconds", "ms", "seconds", "s", "minutes", "m", "hours", "h").Replace(v)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("not a duration")
	}
	return d, nil
}

// learnSettings takes the largest write_request_timeout of the nodes (and
// the configured one) as the bound of a write, as it does the row limit
// (limits.go, which asks again later), and warns about nodes whose commit
// log shows writes before they are on disk.
func (s *Store) learnSettings(ctx context.Context) {
	c, err := s.Nodes(ctx)
	if err != nil {
		return
	}
	told := false
	for _, n := range c.Nodes {
		told = told || n.WriteRequestTimeout > 0
		if n.Answered && n.CommitlogSync == "periodic" {
			s.log.Warn("a Cassandra node runs commitlog_sync: periodic: it shows writes before they are on disk, so an event could carry a version "+
				"that a crash of its replicas takes back; set commitlog_sync: batch (or group) on every node", "node", n.Address)
		}
	}
	if !told && s.writeFloor == 0 {
		s.log.Warn("no Cassandra node told its write_request_timeout (system_views.settings); assuming Cassandra's default; "+
			"set store.cassandra.write_request_timeout to the cluster's", "assumed", DefaultWriteRequestTimeout)
	}
	s.learnRowLimit(c.Nodes)
}

// schemaSettle is how long Check waits for the nodes to agree on the
// schema before it calls a disagreement a failure: a schema change (a
// table created, altered or dropped, by wail or a person) reaches every
// node by gossip within seconds, and the nodes disagree meanwhile.
const schemaSettle = 10 * time.Second

// schemaSettles reports whether the nodes come to agree on the schema
// within schemaSettle (or ctx).
func (s *Store) schemaSettles(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, schemaSettle)
	defer cancel()
	return s.session.AwaitSchemaAgreement(ctx) == nil
}

// Check verifies that the keyspace and the catalog table exist, that the
// nodes agree on the schema, and that every node keeps writes invisible
// until they are on disk.
func (s *Store) Check(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("cassandra: check: %w", err)
	}
	var errs []error
	var n int
	err := s.session.Query("SELECT count(*) FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?", s.ks, catalogTable).
		WithContext(ctx).Consistency(gocql.One).Scan(&n)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("cassandra: check: %w", s.classify(ctx, err)))
	case n == 0:
		errs = append(errs, fmt.Errorf("cassandra: check: no catalog table %s.%s", s.ks, catalogTable))
	}
	c, err := s.Nodes(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if !c.SchemaAgreement && !s.schemaSettles(ctx) {
		errs = append(errs, errors.New("cassandra: check: the nodes do not agree on the schema (each node's schema version: the node lines of wail doctor, or nodetool describecluster); wait, or look for nodes that cannot gossip"))
	}
	for _, n := range c.Nodes {
		if n.Answered && n.CommitlogSync == "periodic" {
			errs = append(errs, fmt.Errorf("cassandra: check: node %s runs commitlog_sync: periodic: set batch or group", n.Address))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// TableOptions are the options of one of wail's tables that wail relies on.
type TableOptions struct {
	Keyspace string
	// Table is the Cassandra table: wail_<name> (or wailh_..., or
	// wailg<generation>_... after a drop: generation.go), or one of
	// wail's own (wail__catalog, wail__leases).
	Table string
	// ReadRepair is the table's read_repair: BLOCKING (Cassandra's
	// default, which wail relies on) or NONE; empty when the cluster does
	// not tell it (Cassandra before 4.0 has no such option).
	ReadRepair string
}

// TableOptions reads the options of wail's tables in the keyspace from
// system_schema.tables, sorted by table. The tables of the keyspace that
// are not wail's (their names do not start with wail_, wailh_ or wailg) are left
// out.
func (s *Store) TableOptions(ctx context.Context) ([]TableOptions, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cassandra: table options: %w", err)
	}
	// SELECT *: a cluster without the read_repair column (before 4.0)
	// still lists its tables.
	iter := s.session.Query("SELECT * FROM system_schema.tables WHERE keyspace_name = ?", s.ks).
		WithContext(ctx).Consistency(gocql.One).Iter()
	var out []TableOptions
	for row := map[string]any{}; iter.MapScan(row); row = map[string]any{} {
		name, _ := row["table_name"].(string)
		if !isWailTable(name) {
			continue
		}
		rr, _ := row["read_repair"].(string)
		out = append(out, TableOptions{Keyspace: s.ks, Table: name, ReadRepair: rr})
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cassandra: table options: %w", s.classify(ctx, err))
	}
	slices.SortFunc(out, func(a, b TableOptions) int { return strings.Compare(a.Table, b.Table) })
	return out, nil
}
