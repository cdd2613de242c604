// Package cassandra is store.Store on Apache Cassandra (gocql), with the
// consistency levels of a configurable ladder (store.cassandra.read_ladder)
// as the read levels: the resolver reads at the first (ONE by default) and
// escalates (to LOCAL_QUORUM by default; QUORUM or ALL if the ladder goes
// on) only when what it read does not cover the intent.
//
// Schema, in one keyspace (created with the configured replication when
// missing):
//
//	CREATE TABLE <ks>.wail_<name> (
//	    key     blob PRIMARY KEY,
//	    value   blob,              -- empty for a tombstone, never null
//	    version bigint,            -- wail's version: also every cell's write timestamp
//	    deleted boolean,
//	    schema_id bigint           -- the value's schema (typed tables); null in rows of older versions
//	) WITH ID = <derived from keyspace and table name> AND gc_grace_seconds = 0;
//	CREATE TABLE <ks>.wail__catalog (name text PRIMARY KEY, spec blob, seq bigint, swaps map<int, blob>);  -- catalog.go
//	CREATE TABLE <ks>.wail__leases (...);                                  -- lease.go
//	CREATE TABLE <ks>.wail__generations (name text PRIMARY KEY, gen bigint); -- generation.go
//
// Names longer than Cassandra's 48 characters map to
// wailh_<first 25>_<hash>. That is the table's generation 0; after N
// drops the table is wailg<N>_<name> (generation.go), so that a table
// created again after a drop is another one, which no DROP of an older
// generation's table reaches, however late. The table id is derived from
// the keyspace and the table's name, so that wail processes creating a
// table at once create the same one.
//
// Last writer wins without Paxos: every write is
//
//	INSERT INTO <table> (key, value, version, deleted, schema_id) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP <version>
//
// and Cassandra keeps, cell by cell and replica by replica, the value with
// the highest write timestamp. wail's 63-bit versions are the timestamps
// themselves: Cassandra compares them as signed 64-bit integers and never
// reads them as a time (TTLs and tombstone expiry use the node's clock), so
// the map is exact and monotonic. A delete is such an INSERT with
// deleted=true and an empty value: live cells, never a Cassandra
// tombstone, so nothing is purged after gc_grace_seconds and nothing can
// come back (DESIGN.md, "The Cassandra store"). gc_grace_seconds = 0 also
// makes hints for these tables expire at once: a write that timed out is
// never replayed from a hint long after wail gave up on it.
//
// Apply reads each key's version first (naming the other columns too, as
// write times: a read repair writes back only the columns a SELECT names,
// stmts.go), at the
// write consistency, and sends the INSERT only when the new version is
// higher: that tells applied from superseded (store.Outcome) and keeps a
// write with an equal version from replacing the stored value (Cassandra
// breaks timestamp ties by comparing values). A concurrent higher write
// that the read did not see still wins in Cassandra, and the outcome then
// says applied.
//
// A write is bounded inside the cluster by its write_request_timeout: a
// replica drops a mutation older than that (counted from when the
// coordinator received the request). Apply sends an INSERT only when at
// least that much time is left before ctx's deadline, so no replica can
// apply it after the deadline (DESIGN.md, "Ambiguous store writes"). The
// nodes are asked for it at Open and again every minute (limits.go).
//
// Leases (lease.go), the catalog's swaps (catalog.go) and the tables'
// generations at create and drop (generation.go) are the only
// lightweight transactions. Reads go to another node when the coordinator
// cannot serve, or as well when it does not answer soon (retry.go); the
// store gives each query its routing key itself (hosts.go).
//
// Durability: the cluster must run commitlog_sync batch or group, which
// make a write visible on a replica only after its commit log entry is
// fsync'd; Open warns when a node runs periodic (then Get could return a
// write that a crash of its replicas takes back).
package cassandra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Defaults for the zero fields of Options.
const (
	DefaultKeyspace     = "wail"
	DefaultQueryTimeout = 5 * time.Second
	DefaultConns        = 2
	DefaultInFlight     = 64
	// DefaultWriteRequestTimeout is Cassandra's own default, assumed when
	// no node tells its write_request_timeout.
	DefaultWriteRequestTimeout = 2 * time.Second
	// DefaultReplicationFactor is the replication factor, in the local
	// data center, of a keyspace Open creates without Options.Replication.
	DefaultReplicationFactor = 3
)

// DefaultReadLadder is the read levels when none are configured.
var DefaultReadLadder = []Consistency{gocql.One, gocql.LocalQuorum}

// Options configures Open.
type Options struct {
	// Hosts are contact points, host or host:port (port 9042 by default).
	Hosts []string
	// Keyspace holds wail's tables; created when missing.
	Keyspace string
	// Replication of the keyspace when Open creates it (ParseReplication);
	// nil: NetworkTopologyStrategy with DefaultReplicationFactor replicas
	// in the local data center. An existing keyspace is left as it is.
	Replication Replication
	// LocalDC is this process's data center: requests go to its nodes and
	// LOCAL_* levels count its replicas. Empty: the data center of the
	// first contact point that answers; Open refuses it when the nodes it
	// may use are in several (the driver picks the contact point at random).
	LocalDC string
	// Write is the consistency of writes; zero (ANY, which is refused)
	// means LOCAL_QUORUM. TableWrite overrides it per wail table.
	Write      Consistency
	TableWrite map[string]Consistency
	// ReadLadder are the read levels, cheapest first (DefaultReadLadder
	// when empty). The last must overlap every table's write level.
	ReadLadder []Consistency
	// Coordinators, when set, are the only nodes (addresses) requests go
	// to; every node still holds its replicas. Empty: every node of the
	// local data center, token-aware. Requests never go to a node of
	// another data center (hosts.go), so coordinators must be local.
	Coordinators []string
	// Conns per node; 0 means DefaultConns.
	Conns int
	// InFlight bounds the keys of one Apply written at once; 0 means
	// DefaultInFlight.
	InFlight int
	// QueryTimeout bounds every request, connecting included; 0 means 5s.
	QueryTimeout time.Duration
	// WriteRequestTimeout is the cluster's write_request_timeout: how long
	// a replica may still apply a write. Open reads it from every node
	// (system_views.settings) and keeps the largest of what they say and
	// this, and the store asks the nodes again every minute (a node
	// restarted with another, or given one by nodetool settimeout); when
	// no node tells and this is 0, Cassandra's default (2s).
	WriteRequestTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Existing opens the keyspace as it is, for a check (wail doctor): Open
	// creates nothing (no keyspace, no catalog table, no column) and fails
	// with ErrNoKeyspace when the keyspace does not exist.
	Existing bool

	// dialer, when set (tests only), makes the driver's connections, to
	// the addresses the nodes gossip: a test routes one node through a
	// proxy of its own that delays, black-holes or resets its traffic
	// (faultproxy_test.go).
	dialer gocql.Dialer
}

// Store is a store.Store on Cassandra. It is safe for concurrent use.
type Store struct {
	session     *gocql.Session
	policy      *hostPolicy
	ks          string
	localDC     string
	ladder      []Consistency
	levels      []string
	write       Consistency
	tableWrite  map[string]Consistency
	inFlight    int
	timeout     time.Duration
	writeFloor  time.Duration // Options.WriteRequestTimeout: the least bound of a write (limits.go)
	limits      limits        // the largest key and value Apply takes, the bound of a write (limits.go)
	replication Replication
	existing    bool // Options.Existing: create nothing
	log         *slog.Logger
	closed      atomic.Bool

	tables sqlstore.Tables // known to exist
	gens   gens            // the tables' current generations (generation.go)

	leaseMu     sync.Mutex
	leasesReady bool // the lease table exists (lease.go)

	genMu     sync.Mutex
	gensReady bool // the generation table exists (generation.go)

	// askLimits asks the nodes for their size settings (limits.go); nil
	// until connected. now is the clock (tests set both).
	askLimits func(context.Context) ([]Node, error)
	now       func() time.Time
	// bgCtx ends at Close, which waits for bg: the store's own
	// background requests.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	seqs catalogSeqs // the catalog entries' swap counts last seen (catalog.go)
	// fault, when set (tests only), runs each request of a catalog swap
	// in place of run: "swap" (an attempt's lightweight transaction) and
	// "read" (the entry at SERIAL). It may fail it, before or after it
	// ran, and run other requests in between. CreateTable runs its
	// CREATE TABLE as "create", after it read the generation; every
	// DROP TABLE (DropTable's, and of a dropped generation's table) runs
	// as "drop".
	fault func(op string, run func() error) error
}

// ErrNoKeyspace: Open with Options.Existing found no keyspace of the name.
var ErrNoKeyspace = errors.New("no such keyspace")

var (
	_ store.Store           = (*Store)(nil)
	_ store.Scanner         = (*Store)(nil)
	_ store.MutationLimiter = (*Store)(nil)
)

// Open connects to the cluster, creates the keyspace and the catalog table
// when missing, checks that the strongest read level overlaps the write
// levels with the keyspace's replication, and learns the nodes'
// write_request_timeout and commit log mode.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := newStore(opts)
	if err != nil {
		return nil, fmt.Errorf("cassandra: open: %w", err)
	}
	if err := s.connect(ctx, opts); err != nil {
		if s.session != nil {
			s.session.Close()
			s.policy.stopLearning()
		}
		return nil, fmt.Errorf("cassandra: open: %w", err)
	}
	s.log.Debug("cassandra store opened", "keyspace", s.ks, "local_dc", s.localDC, "levels", s.levels,
		"write", levelName(s.write), "write_request_timeout", s.writeBound())
	return s, nil
}

func newStore(opts Options) (*Store, error) {
	s := &Store{
		ks: opts.Keyspace, localDC: opts.LocalDC, ladder: opts.ReadLadder, write: opts.Write,
		tableWrite: opts.TableWrite, inFlight: opts.InFlight, timeout: opts.QueryTimeout,
		writeFloor: opts.WriteRequestTimeout, replication: opts.Replication, existing: opts.Existing, log: opts.Logger,
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("no hosts given")
	}
	if s.ks == "" {
		s.ks = DefaultKeyspace
	}
	if err := validateKeyspace(s.ks); err != nil {
		return nil, err
	}
	if len(s.ladder) == 0 {
		s.ladder = DefaultReadLadder
	}
	for _, c := range s.ladder {
		s.levels = append(s.levels, levelName(c))
	}
	if s.write == gocql.Any {
		s.write = gocql.LocalQuorum
	}
	for t := range s.tableWrite {
		if _, err := tableName(t); err != nil {
			return nil, fmt.Errorf("write consistency of table %q: %w", t, err)
		}
	}
	if s.inFlight <= 0 {
		s.inFlight = DefaultInFlight
	}
	if s.timeout <= 0 {
		s.timeout = DefaultQueryTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.learnRowLimit(nil) // Cassandra's defaults until the nodes tell theirs
	return s, nil
}

func (s *Store) connect(ctx context.Context, opts Options) error {
	probed := s.localDC == ""
	if probed {
		dc, err := s.probeDC(opts)
		if err != nil {
			return err
		}
		s.localDC = dc
	}
	s.policy = newHostPolicy(s.localDC, s.ks)
	s.policy.log = s.log
	cluster := s.clusterConfig(opts)
	cluster.PoolConfig.HostSelectionPolicy = s.policy
	if len(opts.Coordinators) > 0 {
		cluster.HostFilter = gocql.WhiteListHostFilter(opts.Coordinators...)
	}
	session, err := cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("%w: hosts %v: %w", store.ErrUnavailable, opts.Hosts, err)
	}
	s.session = session
	s.policy.meta = session.KeyspaceMetadata
	if err := s.policy.checkLocalDC(probed); err != nil {
		return err
	}
	if err := s.prepareKeyspace(ctx); err != nil {
		return err
	}
	s.policy.setReplication(s.replication)
	s.policy.learnReplicas()
	s.learnSettings(ctx)
	s.askLimits = func(ctx context.Context) ([]Node, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*s.timeout)
		defer cancel()
		c, err := s.Nodes(ctx)
		return c.Nodes, err
	}
	return nil
}

func (s *Store) clusterConfig(opts Options) *gocql.ClusterConfig {
	c := gocql.NewCluster(opts.Hosts...)
	c.Consistency = s.write
	c.Timeout = s.timeout
	c.ConnectTimeout = s.timeout
	c.WriteTimeout = s.timeout
	c.NumConns = opts.Conns
	if c.NumConns <= 0 {
		c.NumConns = DefaultConns
	}
	c.ReconnectInterval = 5 * time.Second
	// One try at a node's first connection, not the driver's three a
	// second apart: a node that accepts connections and never answers (a
	// frozen process, a path that black-holes) held Open, which waits for
	// every node's first connection, 3 x (timeout + 1s) (and the driver's
	// protocol discovery and control connection may wait a timeout each
	// on it as well): longer than the 30s wail serve gives an attempt to
	// open from a 9s timeout on (TestOpenWithAStalledNode). A node that
	// failed is tried again every ReconnectInterval.
	c.ReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 1}
	c.Logger = driverLog{s.log}
	if opts.dialer != nil {
		c.Dialer = opts.dialer
	}
	return c
}

// probeDC asks the first contact point that answers for its data center.
func (s *Store) probeDC(opts Options) (string, error) {
	c := s.clusterConfig(opts)
	c.DisableInitialHostLookup = true
	session, err := c.CreateSession()
	if err != nil {
		return "", fmt.Errorf("%w: hosts %v: %w", store.ErrUnavailable, opts.Hosts, err)
	}
	defer session.Close()
	var dc string
	if err := session.Query("SELECT data_center FROM system.local").Consistency(gocql.One).Scan(&dc); err != nil {
		return "", fmt.Errorf("%w: the data center of hosts %v: %w", store.ErrUnavailable, opts.Hosts, err)
	}
	return dc, nil
}

// prepareKeyspace creates the keyspace (if missing) and the catalog table,
// then checks the levels against the keyspace's actual replication. With
// Options.Existing it creates nothing.
func (s *Store) prepareKeyspace(ctx context.Context) error {
	repl := s.replication
	if repl == nil {
		repl = Replication{s.localDC: DefaultReplicationFactor}
	}
	if !s.existing {
		if err := s.ddl(ctx, fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", s.ks, repl.CQL())); err != nil {
			return err
		}
	}
	var opts map[string]string
	q := s.session.Query("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", s.ks).WithContext(ctx)
	switch err := q.Consistency(gocql.One).Scan(&opts); {
	case errors.Is(err, gocql.ErrNotFound) && s.existing:
		return fmt.Errorf("%w: keyspace %s does not exist (wail serve creates it at its first start): check store.cassandra.keyspace", ErrNoKeyspace, s.ks)
	case err != nil:
		return fmt.Errorf("reading the replication of keyspace %s: %w", s.ks, s.classify(ctx, err))
	}
	actual, err := ParseReplication(opts)
	if err != nil {
		return fmt.Errorf("keyspace %s: %w", s.ks, err)
	}
	s.replication = actual
	if err := s.checkLevels(); err != nil {
		return err
	}
	s.warnFewNodes()
	if s.existing {
		return nil
	}
	if err := s.ddl(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (name text PRIMARY KEY, spec blob, seq bigint, swaps map<int, blob>) WITH ID = %s",
		s.ks, catalogTable, tableID(s.ks, catalogTable))); err != nil {
		return err
	}
	return s.migrate(ctx)
}

// migrate adds the columns later than the first tables: schema_id to the
// wail tables of the keyspace that lack it (rows written before read
// schema_id 0, null), seq and swaps to the catalog (catalog.go; an
// earlier catalog's tag column stays, unused). A process migrating at the
// same time makes the ALTER fail on the existing column, which is the work
// done.
func (s *Store) migrate(ctx context.Context) error {
	iter := s.session.Query("SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = ?", s.ks).
		WithContext(ctx).Consistency(gocql.One).Iter()
	cols := map[string]map[string]bool{}
	var table, col string
	for iter.Scan(&table, &col) {
		if cols[table] == nil {
			cols[table] = map[string]bool{}
		}
		cols[table][col] = true
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("list columns: %w", s.classify(ctx, err))
	}
	type column struct{ table, name, typ string }
	var add []column
	for t, c := range cols {
		switch {
		case t == catalogTable:
			for _, n := range []column{{t, "seq", "bigint"}, {t, "swaps", "map<int, blob>"}} {
				if !c[n.name] {
					add = append(add, n)
				}
			}
		case c["version"] && c["deleted"] && !c["schema_id"]:
			add = append(add, column{t, "schema_id", "bigint"})
		}
	}
	for _, c := range add {
		err := s.ddl(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD %s %s", s.ks, c.table, c.name, c.typ))
		if err != nil && !strings.Contains(err.Error(), "conflicts with an existing column") {
			return fmt.Errorf("add %s to %s: %w", c.name, c.table, err)
		}
	}
	return nil
}

// checkLevels: every level can be met, and the strongest read sees every
// acknowledged write of every table.
func (s *Store) checkLevels() error {
	r := s.replication
	top := s.ladder[len(s.ladder)-1]
	writes := map[string]Consistency{"store.cassandra.write_consistency": s.write}
	for t, c := range s.tableWrite {
		writes["the write consistency of table "+t] = c
	}
	for _, c := range s.ladder {
		if err := r.Satisfiable(c, s.localDC); err != nil {
			return fmt.Errorf("read level: %w", err)
		}
	}
	for what, w := range writes {
		if err := r.Satisfiable(w, s.localDC); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !r.Overlaps(w, top, s.localDC) {
			return fmt.Errorf("the strongest read level %s does not overlap %s (%s) with replication %s in data center %q: "+
				"the resolver could miss acknowledged writes; end store.cassandra.read_ladder with a stronger level, or write at a stronger one "+
				"(reads + writes must exceed the replicas)", levelName(top), what, levelName(w), r.CQL(), s.localDC)
		}
	}
	return nil
}

// warnFewNodes warns when a level needs more replicas in a data center
// than it has nodes (a keyspace made for a bigger cluster): every request
// at that level fails with Unavailable until nodes are added.
func (s *Store) warnFewNodes() {
	nodes := map[string]int{}
	for _, h := range s.policy.known() {
		nodes[h.DataCenter()]++
	}
	if _, simple := s.replication[""]; simple {
		nodes = map[string]int{"": len(s.policy.known())}
	}
	for _, c := range append([]Consistency{s.write}, s.ladder...) {
		_, perDC := s.replication.reach(c, s.localDC)
		for dc, need := range perDC {
			if need > nodes[dc] {
				s.log.Warn("a Cassandra consistency level needs more replicas than the data center has nodes: requests at it fail (Unavailable) "+
					"until nodes are added; check store.cassandra.replication (an existing keyspace keeps its own: ALTER KEYSPACE)",
					"level", levelName(c), "data_center", dc, "needs", need, "nodes", nodes[dc], "keyspace", s.ks, "replication", s.replication.CQL())
			}
		}
	}
}

// ddl runs a schema change; the driver waits for schema agreement.
func (s *Store) ddl(ctx context.Context, stmt string) error {
	if err := s.session.Query(stmt).WithContext(ctx).Consistency(gocql.One).Exec(); err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// Levels returns the read ladder's level names, cheapest first.
func (s *Store) Levels() []string { return append([]string(nil), s.levels...) }

// Close closes the session; later calls return nil and every other
// operation fails with store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stopBackground()
	s.session.Close()
	s.policy.stopLearning() // after the session: that ends a schema read the learner waits for
	return nil
}

// stopBackground ends the store's background work, once closed is set,
// and waits for it. A refresh of the limits checks closed and joins bg
// under the limits' lock: once that lock was held here, every later one
// sees closed, and no Add runs beside the Wait (a misuse of the
// WaitGroup), nor does a refresh start once Close returned
// (TestNoRefreshAfterClose).
func (s *Store) stopBackground() {
	s.limits.mu.Lock()
	//lint:ignore SA2001 the empty section is the point: a barrier
	s.limits.mu.Unlock()
	s.bgCancel()
	s.bg.Wait()
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// writeConsistency is the write level of a table.
func (s *Store) writeConsistency(table string) Consistency {
	if c, ok := s.tableWrite[table]; ok {
		return c
	}
	return s.write
}

// validTable checks a wail table's name.
func validTable(table string) error {
	_, err := tableName(table)
	return err
}

// CreateTable creates the Cassandra table of the table's current
// generation if it does not exist, and returns once it does while the
// generation is still that one (generation.go).
func (s *Store) CreateTable(ctx context.Context, table string) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("cassandra: create table: %w", err)
	}
	if err := validTable(table); err != nil {
		return fmt.Errorf("cassandra: create table: %w", err)
	}
	if err := s.createTable(ctx, table); err != nil {
		return fmt.Errorf("cassandra: create table %q: %w", table, err)
	}
	s.tables.Remember(table)
	return nil
}

// createTries bounds the rounds of a create that keeps finding its table's
// generation moved on by drops.
const createTries = 8

func (s *Store) createTable(ctx context.Context, table string) error {
	for range createTries {
		// Read at SERIAL, not cached: another process may have dropped
		// the table since this one last used it.
		s.gens.mu.Lock()
		epoch := s.gens.epoch
		s.gens.mu.Unlock()
		asOf := s.seqs.asOf(table)
		gen, err := s.generation(ctx, table)
		if err != nil {
			return err
		}
		cname := generationName(table, gen)
		stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (key blob PRIMARY KEY, value blob, version bigint, deleted boolean, schema_id bigint) "+
			"WITH ID = %s AND gc_grace_seconds = 0 AND comment = 'wail table %s, generation %d'", s.ks, cname, tableID(s.ks, cname), table, gen)
		if err := s.hook("create", func() error { return s.ddl(ctx, stmt) }); err != nil {
			return err
		}
		// A drop moves the generation on before it drops: the same
		// generation now means no drop of this table began since it
		// existed.
		now, err := s.generation(ctx, table)
		if err != nil {
			return err
		}
		if now != gen {
			continue // dropped meanwhile: its table is garbage
		}
		s.rememberGen(table, gen, asOf, epoch)
		if err := s.sweep(ctx, table, gen); err != nil {
			s.log.Warn("the Cassandra tables of a wail table's dropped generations (garbage left by creates that raced drops) could not be dropped; "+
				"the next create or drop of the table tries again", "table", table, "keyspace", s.ks, "generation", gen, "err", err)
		}
		return nil
	}
	return fmt.Errorf("%w: its table kept being dropped while it was created (%d rounds); try again",
		store.ErrUnavailable, createTries)
}

// ensureTable runs create, a CREATE TABLE IF NOT EXISTS of wail's own
// Cassandra table cname, unless the node that answers a read of the
// schema knows the table: a process makes its tables at their first use,
// under a lock every first request of every table waits on, and a DDL
// statement waits on whichever node it went to, while the read goes
// around a node that does not answer (asRead; TestFirstUseDuringAStall).
// The tables exist nearly always: a node that has not learnt of one yet
// only has it made again, the same (its id is fixed).
func (s *Store) ensureTable(ctx context.Context, cname, create string) error {
	var id gocql.UUID
	err := asRead(s.session.Query("SELECT id FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?", s.ks, cname).
		WithContext(ctx).Consistency(gocql.One), s.speculateAfter()).Scan(&id)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, gocql.ErrNotFound):
		return fmt.Errorf("looking for table %s: %w", cname, s.classify(ctx, err))
	}
	return s.ddl(ctx, create)
}

// tableIDNow reads the id Cassandra holds for Cassandra table cname.
func (s *Store) tableIDNow(ctx context.Context, cname string) (gocql.UUID, bool, error) {
	var id gocql.UUID
	err := s.session.Query("SELECT id FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?", s.ks, cname).
		WithContext(ctx).Consistency(gocql.One).Scan(&id)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return id, false, nil
	case err != nil:
		return id, false, fmt.Errorf("the id of %s: %w", cname, s.classify(ctx, err))
	}
	return id, true, nil
}

// SaveTable writes a catalog entry at the write consistency.
func (s *Store) SaveTable(ctx context.Context, t store.Table) error {
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("cassandra: save table: %w", err)
	}
	q := s.session.Query(fmt.Sprintf("INSERT INTO %s.%s (name, spec) VALUES (?, ?)", s.ks, catalogTable), t.Name, sqlstore.NotNull(t.Spec))
	if err := q.WithContext(ctx).Consistency(s.write).Exec(); err != nil {
		return fmt.Errorf("cassandra: save table %q: %w", t.Name, s.classify(ctx, err))
	}
	return nil
}

// Tables reads the catalog at the strongest read level (an entry a swap
// deleted keeps its row, with a null spec: not listed). It reads swaps too,
// unused, so that the read repair it may trigger carries whole rows (as
// scanStmt; stmts.go).
func (s *Store) Tables(ctx context.Context) ([]store.Table, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cassandra: tables: %w", err)
	}
	iter := asRead(s.session.Query(fmt.Sprintf("SELECT name, spec, seq, swaps FROM %s.%s", s.ks, catalogTable)).
		WithContext(ctx).Consistency(s.ladder[len(s.ladder)-1]), s.speculateAfter()).Iter()
	var out []store.Table
	var name string
	var spec nullable
	var seq int64
	var swaps map[int][]byte
	for iter.Scan(&name, &spec, &seq, &swaps) {
		s.seqs.raise(name, seq)
		// A table created again is a new entry: the generation read
		// before it is stale (generation.go).
		s.forgetGen(name, seq)
		if !spec.null { // null: deleted by a swap (catalog.go)
			out = append(out, store.Table{Name: name, Spec: append([]byte{}, spec.b...)})
		}
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cassandra: tables: %w", s.classify(ctx, err))
	}
	return out, nil
}

// driverLog sends the driver's log lines to slog at debug level: what a
// person must act on (a node down, a write that failed) reaches them as
// errors of the store's calls.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) {
	d.log.Debug(strings.TrimSpace(fmt.Sprint(v...)), "component", "gocql")
}
func (d driverLog) Printf(format string, v ...any) {
	d.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "gocql")
}
func (d driverLog) Println(v ...any) {
	d.log.Debug(strings.TrimSpace(fmt.Sprintln(v...)), "component", "gocql")
}
