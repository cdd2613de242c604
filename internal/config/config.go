// Package config is wail's configuration: defaults, the YAML file, and
// validation with messages that say which setting is wrong and why.
//
// Every field has a default; a YAML file only names what it changes. Unknown
// keys are errors (keys.go names the key likely meant), and so are keys
// without a value, so a typo never silently falls back to a default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
)

// Config is the whole configuration of a wail process.
type Config struct {
	// DataDir holds the embedded log, store and event bus.
	DataDir string `yaml:"data_dir"`
	// Listen is the address of the API (gRPC, gRPC-Web, Connect, JSON) and
	// of /metrics and /healthz.
	Listen string `yaml:"listen"`
	// ProxyID goes into every version this proxy stamps (0..1023); proxies
	// sharing a store must use different ids.
	ProxyID uint32 `yaml:"proxy_id"`
	// ShutdownTimeout bounds how long a graceful shutdown drains.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StartTimeout bounds how long a start waits for the Kafka brokers or
	// the SQL store to answer (0: for ever); see internal/server/start.go.
	StartTimeout time.Duration `yaml:"start_timeout"`

	// Proxy is the write API (ProducerService). `wail resolve` runs without it.
	Proxy struct {
		// Enabled serves the write API; false for a resolver-only process
		// (wail resolve).
		Enabled bool `yaml:"enabled"`
		// LeaseTTL: on a shared (SQL) store a proxy leases its proxy id
		// for this long and renews it every third of it; a crashed
		// proxy's id is free again after it (internal/lease).
		LeaseTTL time.Duration `yaml:"lease_ttl"`
		// ClockSkewAlert: when versions this proxy observes (from other
		// proxies, the log, the store) run ahead of its clock by more
		// than this, it warns and reports degraded.
		ClockSkewAlert time.Duration `yaml:"clock_skew_alert"`
		// WritesInFlight is how many write batches of one table run at
		// once (intent append, then store write); writes that arrive
		// while that many run wait and are merged into one batch of up to
		// limits.max_batch_mutations. Higher lets more appends share one
		// log sync; lower merges more.
		WritesInFlight int `yaml:"writes_in_flight"`
		// MaxMergeBytes caps the rows (keys, values, JSON documents) of a
		// merged batch, as limits.max_batch_mutations caps its
		// mutations: waiting writes are added to a batch while it stays
		// within both (a single larger write runs alone). It bounds the
		// store write, and the memory, of a batch under load. A merged
		// batch also stays within what the intent log takes in one append
		// (the embedded log: 16 MiB of intents).
		MaxMergeBytes int `yaml:"max_merge_bytes"`
		// MaxBacklog is the most intents of a table logged past the
		// resolver's committed offsets: at that many its writes are
		// refused (resource_exhausted, with a retry hint) until the
		// resolver catches up, so that past the rate the resolver
		// sustains, writes slow down instead of events falling behind
		// without bound. 0 turns it off.
		MaxBacklog int64 `yaml:"max_backlog"`
	} `yaml:"proxy"`
	// CatalogRefresh is how often the catalog is reloaded from the store,
	// to see tables that other processes sharing the store created (at
	// least 10ms). Every process sharing a store must use the same one:
	// drops and alters count on it (not checked).
	CatalogRefresh time.Duration `yaml:"catalog_refresh"`

	Limits Limits `yaml:"limits"`
	API    API    `yaml:"api"` // request, connection and stream budgets (api.go)
	// Security is TLS, authentication and authorization of the API
	// (security.go).
	Security Security `yaml:"security"`
	Tracing  Tracing  `yaml:"tracing"` // OpenTelemetry traces of writes (tracing.go)
	Console  Console  `yaml:"console"` // the web console (console.go)
	Memory   Memory   `yaml:"memory"`  // the garbage collector (memory.go)
	Log      Log      `yaml:"log"`
	Store    Store    `yaml:"store"`
	Resolver Resolver `yaml:"resolver"`
	Defaults Table    `yaml:"table_defaults"`
	// SchemaRegistry is the Confluent-compatible schema registry
	// (schema_registry.go).
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	// Tables are created at start when missing.
	Tables []Table `yaml:"tables"`
	// Sinks are the webhook sinks (sinks.go).
	Sinks Sinks `yaml:"sinks"`
}

// MySQLMaxKeyBytes is the longest key the mysql store keeps (its key
// column, internal/store/mysql).
const MySQLMaxKeyBytes = 4096

// CassandraMaxKeyBytes is the longest key the cassandra store keeps
// (Cassandra's partition keys: a 16-bit length).
const CassandraMaxKeyBytes = 65535

// Limits bound what the proxy accepts and how many partitions tables
// may have.
type Limits struct {
	// MaxKeyBytes bounds a row key (1..65536, at most MySQLMaxKeyBytes with
	// store.kind mysql, CassandraMaxKeyBytes with cassandra; over it:
	// InvalidArgument).
	MaxKeyBytes int `yaml:"max_key_bytes"`
	// MaxValueBytes bounds a value (1..67108864; over it: InvalidArgument).
	MaxValueBytes int `yaml:"max_value_bytes"`
	// MaxBatchMutations bounds the mutations of one Write.
	MaxBatchMutations int `yaml:"max_batch_mutations"`
	// MaxTablePartitions bounds one table's partitions (a create or a
	// table_defaults over it is InvalidArgument).
	MaxTablePartitions int32 `yaml:"max_table_partitions"`
	// MaxPartitions bounds the partitions of all tables of the store (a
	// create over it is ResourceExhausted).
	MaxPartitions int `yaml:"max_partitions"`
}

// Log configures the intent log and the event bus.
type Log struct {
	// Kind is embedded (files in data_dir) or kafka.
	Kind  string `yaml:"kind"`
	Kafka Kafka  `yaml:"kafka"`
	// SegmentBytes is the size at which the embedded log starts a new
	// segment file (at least 1 MiB).
	SegmentBytes int64 `yaml:"segment_bytes"`
	// Retention removes intents older than this (0s keeps them forever;
	// otherwise at least 1m).
	Retention time.Duration `yaml:"retention"`
	// EventRetention removes events older than this (0s keeps them
	// forever; Kafka also compacts the event topics). At least
	// log.retention, and 0s when that is 0s: events must outlive the
	// intents they resolve.
	EventRetention time.Duration `yaml:"event_retention"`
	// DLQRetention bounds the dead-letter topics (0s, the default, keeps
	// them forever: a dead letter waits for a person); otherwise at least
	// 1m.
	DLQRetention time.Duration `yaml:"dlq_retention"`
	// NoSync skips fsync: only for throwaway data (tests, demos of speed).
	NoSync bool `yaml:"no_sync"`
	// MaxOpenFiles bounds the embedded log's open segment files (0: a
	// quarter of the soft RLIMIT_NOFILE, which the server first raises to
	// the hard limit, between 64 and 4096).
	MaxOpenFiles int `yaml:"max_open_files"`
	// SyncFilesystem makes the embedded log's partitions share one
	// syncfs(2) of the data dir's filesystem per round instead of an fsync
	// per partition and batch: less CPU, but each round also writes back
	// every other dirty file of that filesystem, so use it on a volume of
	// wail's own (Linux >= 5.8; elsewhere the log fsyncs per file).
	SyncFilesystem bool `yaml:"sync_filesystem"`
}

// validateRetention refuses events that expire before the intents they
// resolve: a resolver that replays intents (after `wail log repair` of an
// offsets file, or when a key held its commit back) learns each key's last
// event from the bus, and a key whose events expired looks new, so it
// would publish a version a consumer has seen again.
func (l Log) validateRetention() []error {
	switch {
	case l.EventRetention <= 0 || l.Retention < 0:
		return nil // events forever (a negative value is refused above)
	case l.Retention == 0:
		return []error{fmt.Errorf("log.event_retention %s is shorter than log.retention 0s (intents kept forever): "+
			"a replayed intent whose events expired would be published again; set log.event_retention to 0s (events forever) or log.retention to at most %[1]s",
			l.EventRetention)}
	case l.EventRetention < l.Retention:
		return []error{fmt.Errorf("log.event_retention %s is shorter than log.retention %s: "+
			"a replayed intent whose events expired would be published again; set log.event_retention to at least %[2]s (or 0s, events forever), or lower log.retention",
			l.EventRetention, l.Retention)}
	}
	return nil
}

// Kafka configures the Kafka log.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port (log.kind kafka only).
	Brokers []string `yaml:"brokers"`
	// ClientID is the client id wail's Kafka clients send (broker logs,
	// quotas).
	ClientID string `yaml:"client_id"`
	// ReplicationFactor of the topics wail creates (-1: the broker's default).
	ReplicationFactor int16 `yaml:"replication_factor"`
	// IntentTopic names a table's intent topic; {table} is the table's
	// name.
	IntentTopic string `yaml:"intent_topic"`
	// EventTopic names a table's event topic (compacted); {table} is the
	// table's name.
	EventTopic string `yaml:"event_topic"`
	// DLQTopic names a table's dead-letter topic; {table} is the table's
	// name.
	DLQTopic string `yaml:"dlq_topic"`
	// MaxMessageBytes is the largest record batch wail's producers send
	// and the max.message.bytes of the topics wail creates (topics that
	// exist keep theirs: wail reads it and refuses larger records with
	// ResourceExhausted). It bounds a value and its event: keep
	// limits.max_key_bytes plus limits.max_value_bytes below it (checked).
	MaxMessageBytes int32 `yaml:"max_message_bytes"`
	// RetentionCheck is how often the retention of every table's intent
	// and event topics is read again (wail does not alter an existing
	// topic's configs: it checks that events outlive intents and that no
	// intent topic is compacted, and raises retention/<table> when not);
	// besides, at start and at a table's create. 0s: only then. The same
	// periodic check compares the topics' partition counts with the
	// table's (partitions/<table>).
	RetentionCheck time.Duration `yaml:"retention_check"`
	TLS            struct {
		// Enabled talks TLS to the brokers (the system's roots unless
		// ca_file is given).
		Enabled bool `yaml:"enabled"`
		// CAFile is a PEM file of the CAs that sign the brokers'
		// certificates.
		CAFile string `yaml:"ca_file"`
		// CertFile is the client certificate (PEM) for brokers that want
		// one; key_file goes with it.
		CertFile string `yaml:"cert_file"`
		// KeyFile is the client certificate's key (PEM).
		KeyFile string `yaml:"key_file"`
	} `yaml:"tls"`
	SASL struct {
		// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("" for none).
		Mechanism string `yaml:"mechanism"`
		// User is the SASL user (required with a mechanism).
		User string `yaml:"user"`
		// Password is the SASL password.
		Password string `yaml:"password"`
	} `yaml:"sasl"`
}

// The range of log.kafka.max_message_bytes: a batch must hold one intent
// of the largest key (64 KiB), and brokers refuse requests over 1 GiB
// whatever the topic says (socket.request.max.bytes).
const (
	minKafkaMessageBytes = 128 << 10
	maxKafkaMessageBytes = 1 << 30
)

// The most of store.max_conns (a pool takes it as an int32; no database
// serves more) and of resolver.concurrency (as many reads run at once, on
// as many goroutines).
const (
	maxConns       = 10000
	maxConcurrency = 10000
)

// Log kinds.
const (
	LogEmbedded = "embedded"
	LogKafka    = "kafka"
)

// Store configures the store.
type Store struct {
	// Kind is pebble (embedded, in data_dir), postgres, mysql (MySQL 8
	// and MariaDB 10.11+) or cassandra.
	Kind string `yaml:"kind"`
	// NoSync skips fsync in the embedded store: only for throwaway data.
	NoSync bool `yaml:"no_sync"`
	// VersionCacheKeys bounds the row versions the pebble store keeps in
	// memory so that a write need not read its key first (about 80 bytes
	// each with 16-byte keys; 0: none, every write reads). The store loads
	// them at start; while all of its rows fit, a write of a new key reads
	// nothing either.
	VersionCacheKeys int `yaml:"version_cache_keys"`
	// RowCacheBytes bounds the rows the pebble store keeps in memory after
	// writing them, so that the resolver's read-back of them need not read
	// Pebble (0: none, every read goes to Pebble).
	RowCacheBytes int64 `yaml:"row_cache_bytes"`
	// DSN is the primary of a postgres or mysql store, e.g.
	// postgres://user:pass@host:5432/db or user:pass@tcp(host:3306)/db.
	DSN string `yaml:"dsn"`
	// ReplicaDSNs are read replicas, read first (cheapest level first); the
	// resolver escalates to the primary when they are behind.
	ReplicaDSNs []string `yaml:"replica_dsns"`
	// MaxConns sizes each connection pool (1..10000).
	MaxConns int `yaml:"max_conns"`
	// QueryTimeout bounds every query; postgres and mysql also bound each
	// statement's run and lock waits inside the database by it, less a
	// margin, unless the DSN sets those settings itself.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// ReplicaWait (postgres with replica_dsns): a read at a replica waits
	// up to this long for the replica to have replayed what the primary
	// had flushed when the read was asked, then reads it either way; 0
	// reads at once (most reads right after a write then find the replica
	// behind and go to the primary as well).
	ReplicaWait time.Duration `yaml:"replica_wait"`
	// ReplicaBreakerFailures (postgres, mysql with replica_dsns): after
	// this many reads of a replica in a row time out or lose their
	// connection, its reads go to the next level (the primary at the end)
	// at once, until a probe read answers; 0: never (every read of a
	// replica that stopped answering waits the query timeout).
	ReplicaBreakerFailures int `yaml:"replica_breaker_failures"`
	// ReplicaBreakerBackoff is how long a replica's reads go to the next
	// level before one read probes it again; it doubles with each probe
	// that does not answer either (0s: 1s).
	ReplicaBreakerBackoff time.Duration `yaml:"replica_breaker_backoff"`
	// ReplicaBreakerMaxBackoff bounds that doubling (0s: 30s).
	ReplicaBreakerMaxBackoff time.Duration `yaml:"replica_breaker_max_backoff"`
	// Cassandra configures store.kind cassandra (cassandra.go).
	Cassandra Cassandra `yaml:"cassandra"`
}

// Store kinds.
const (
	StorePebble    = "pebble"
	StorePostgres  = "postgres"
	StoreMySQL     = "mysql"
	StoreCassandra = "cassandra"
)

// Resolver configures the resolver.
type Resolver struct {
	// Enabled runs the resolver; false for a proxy-only process (wail
	// proxy).
	Enabled bool `yaml:"enabled"`
	// Concurrency bounds the reads in flight across all partitions
	// (1..10000). Local stores want few (reads take microseconds), remote
	// ones more.
	Concurrency int `yaml:"concurrency"`
	// FirstReadDelay holds the first read of an intent until this long after
	// it was created, since the proxy writes the store only after logging it.
	// A process whose proxy serves writes (wail serve) skips it for that
	// proxy's intents with a store of one read level (no replicas): it holds
	// such a read until the write returned.
	FirstReadDelay time.Duration `yaml:"first_read_delay"`
	// ReadBackWrites makes a read held on a store write of this process's
	// proxy read the store once the write returned. By default it takes
	// the row that write stored (the newest version of the key it applied,
	// durable, as the proxy's answer says) without a store read, when that
	// covers every intent of the key the read must cover. Set it when
	// something else changes rows as they are written (a trigger, a
	// default the database fills in): then only a read shows the stored row.
	ReadBackWrites bool `yaml:"read_back_writes"`
	// BackoffMin is the first wait before a key is read again when the
	// store does not show its version yet; it doubles up to BackoffMax
	// (at least 100µs).
	BackoffMin time.Duration `yaml:"backoff_min"`
	// BackoffMax bounds the wait between reads of a key.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// DedupeHorizon is how long the resolver remembers the last published
	// version of an idle key, and how far back (before its oldest
	// unresolved intent was logged) it scans the bus and the dead-letter
	// topic on restart: clock skew beyond it can repeat an event or a
	// dead letter.
	DedupeHorizon time.Duration `yaml:"dedupe_horizon"`
	// CommitInterval is how often each partition commits its lowest
	// unresolved offset (and looks up its table's definition); at least
	// 1ms. Every process sharing a store must use the same one: a
	// lengthened visibility window is used for writes once the altering
	// process's passed (not checked).
	CommitInterval time.Duration `yaml:"commit_interval"`
	// MaxUnresolved pauses reading a partition while this many of its
	// intents are unresolved.
	MaxUnresolved int `yaml:"max_unresolved"`
	// Group is the resolvers' group: on Kafka, the consumer group whose
	// members share the intent partitions; embedded, the name offsets are
	// committed under.
	Group string `yaml:"group"`
	// InstanceID names this resolver in its group (Kafka) for its life and
	// across restarts: a restart with the same id fences the old process
	// and aborts its open transaction at once. Every resolver process of a
	// group needs its own. Default: the host name and the listen port,
	// which are both stable and, together, unique.
	InstanceID string `yaml:"instance_id"`
	// TransactionProducers (Kafka) is how many transactions one resolver
	// process runs at once, each for its share of the partitions (each
	// shard on two transactional producers in turn, so twice as many Kafka
	// clients).
	TransactionProducers int `yaml:"transaction_producers"`
	// TransactionLinger (Kafka) is the least time between the starts of
	// two transactions of one shard: events ready meanwhile go in the
	// next, so that fewer, larger transactions carry them (0: back to
	// back).
	TransactionLinger time.Duration `yaml:"transaction_linger"`
	// RetryBackoffMin and RetryBackoffMax bound the backoff of a key whose
	// store read or event publish failed: doubling from min to max, with
	// jitter (min at least 1ms). How long it is retried is the table's
	// max_attempts and max_retry_time.
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min"`
	// RetryBackoffMax bounds the backoff of a key whose read or publish
	// failed.
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// Recheck: when the visibility window of an intent ends without the
	// store showing its version (unmaterialized), its key is read once
	// more, at the strongest level, this many windows later, and a write
	// that committed meanwhile gets its event: a commit the database made
	// visible after the window (a WAL flush or fsync that stalled, a
	// database starved of CPU). The intent holds the partition's commit
	// until then. 0 turns rechecks off (such a write then has no event).
	Recheck float64 `yaml:"recheck"`
	// StallAfter: a partition whose oldest unresolved intent waits longer
	// (and at least twice its table's visibility window plus its recheck)
	// is reported degraded on /healthz.
	StallAfter time.Duration `yaml:"stall_after"`
}

// Table is a table definition (also used for defaults). In tables, a
// setting left out takes table_defaults' at creation, and is not compared
// with (or applied to) a table that exists.
type Table struct {
	// Name of a table: 1-63 lower-case letters, digits or '_', starting
	// with a letter (not in table_defaults).
	Name string `yaml:"name"`
	// FailureMode is transactional (a write whose intent cannot be logged
	// fails and the store is untouched) or independent (the store is
	// written anyway; no event is guaranteed).
	FailureMode string `yaml:"failure_mode"`
	// VisibilityWindow is how long the resolver waits for the store to
	// show an intent's version before counting it unmaterialized
	// (10ms..24h). Alterable.
	VisibilityWindow time.Duration `yaml:"visibility_window"`
	// Partitions of the table's topics (1..limits.max_table_partitions);
	// cannot change once created.
	Partitions int32 `yaml:"partitions"`
	// MaxAttempts bounds the counted failures of a key's store read or
	// event publish before the resolver dead-letters its intents
	// (1..1000000; whichever of the two bounds comes first). A key's only
	// counted failure that may be the first of an outage dead-letters
	// nothing, so with 1 it may take the key's second. Alterable.
	MaxAttempts int32 `yaml:"max_attempts"`
	// MaxRetryTime bounds the time from a key's first counted failure until
	// its intents are dead-lettered, less the time the store or the bus was
	// out for the key meanwhile (1s..168h). Alterable.
	MaxRetryTime time.Duration `yaml:"max_retry_time"`
	// KeyProto makes a typed table's keys (not in table_defaults): the
	// .proto file of their message type, registered under
	// <event topic>-key at start (a changed file registers a new version,
	// compatibility-checked). Imports are not supported here: use
	// wail table create --key-ref.
	KeyProto string `yaml:"key_proto"`
	// KeyMessage is the keys' message type in key_proto.
	KeyMessage string `yaml:"key_message"`
	// ValueProto makes a typed table's values, as key_proto does the
	// keys (subject <event topic>-value).
	ValueProto string `yaml:"value_proto"`
	// ValueMessage is the values' message type in value_proto.
	ValueMessage string `yaml:"value_message"`
	// Validate checks writes of a typed table against its schemas
	// (default true). Alterable.
	Validate *bool `yaml:"validate"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	c := defaults()
	c.Proxy.Enabled = true
	c.Proxy.LeaseTTL, c.Proxy.ClockSkewAlert = 15*time.Second, time.Second
	c.Proxy.WritesInFlight = 4
	c.Proxy.MaxMergeBytes = 64 << 20
	c.Proxy.MaxBacklog = 200000
	c.Sinks.Enabled = true
	return c
}

func defaults() Config {
	return Config{
		CatalogRefresh:  2 * time.Second,
		Sinks:           Sinks{Refresh: 5 * time.Second},
		DataDir:         "./wail-data",
		Listen:          "127.0.0.1:7070",
		ShutdownTimeout: 30 * time.Second,
		Limits: Limits{MaxKeyBytes: 4 << 10, MaxValueBytes: 1 << 20, MaxBatchMutations: 10000,
			MaxTablePartitions: catalog.DefaultMaxTablePartitions, MaxPartitions: catalog.DefaultMaxPartitions},
		API:            defaultAPI(),
		SchemaRegistry: defaultSchemaRegistry(),
		Security: Security{ReloadInterval: 5 * time.Second,
			Auth: Auth{TokensSource: TokensFromFile, TokensRefresh: 2 * time.Second, TokensMaxStaleness: 30 * time.Second}},
		Tracing: defaultTracing(),
		Console: defaultConsole(),
		Memory:  defaultMemory(),
		Log: Log{Kind: LogEmbedded, SegmentBytes: 64 << 20, Retention: 7 * 24 * time.Hour,
			Kafka: Kafka{ClientID: "wail", ReplicationFactor: -1, MaxMessageBytes: 4 << 20, RetentionCheck: 5 * time.Minute, IntentTopic: "wail.intents.{table}", EventTopic: "wail.events.{table}",
				DLQTopic: "wail.dlq.{table}"}},
		Store: Store{Kind: StorePebble, MaxConns: 16, QueryTimeout: 5 * time.Second, ReplicaWait: 50 * time.Millisecond,
			ReplicaBreakerFailures: 3, ReplicaBreakerBackoff: time.Second, ReplicaBreakerMaxBackoff: 30 * time.Second, Cassandra: defaultCassandra(),
			VersionCacheKeys: 1 << 17, RowCacheBytes: 32 << 20},
		Resolver: Resolver{
			Enabled: true, Concurrency: 16, FirstReadDelay: 2 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 200 * time.Millisecond,
			DedupeHorizon: 2 * time.Minute, CommitInterval: 200 * time.Millisecond, MaxUnresolved: 100000,
			Group: "wail-resolver", TransactionProducers: 1,
			RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 5 * time.Second, StallAfter: time.Minute, Recheck: 1,
		},
		Defaults: Table{FailureMode: "transactional", VisibilityWindow: 10 * time.Second, Partitions: 8,
			MaxAttempts: 10, MaxRetryTime: time.Minute},
	}
}

// Load reads a YAML file over the defaults and validates the result. An
// empty path returns the defaults.
func Load(path string) (Config, error) {
	c, err := Read(path)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		if path == "" {
			return c, err
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Read reads a YAML file over the defaults without validating the result,
// for a caller that changes it further (the flags of wail serve) and then
// validates it (Validate). An empty path returns the defaults.
func Read(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := readBounded(path)
	if err != nil {
		return c, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		if at := InvalidUTF8(b); at != "" { // the parser's message has no line
			return c, fmt.Errorf("config %s: %s: save the file as UTF-8", path, at)
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if errs := checkKeys(&doc); len(errs) > 0 {
		return c, fmt.Errorf("config %s: %w", path, errors.Join(errs...))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is all defaults
		if strings.Contains(err.Error(), "into time.Duration") {
			err = fmt.Errorf("%w\n(%s)", err, durationHint)
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	// A second document would be ignored: its settings would silently keep
	// their defaults.
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return c, fmt.Errorf("config %s: %w", path, err)
	case len(more.Content) > 0 && more.Content[0].Tag != "!!null": // an empty document is no setting
		return c, fmt.Errorf("config %s: line %d: a second YAML document (---): put every setting in one document", path, more.Content[0].Line)
	}
	return c, nil
}

// Validate checks every setting and names the first wrong one.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.DataDir != "", "data_dir must not be empty")
	errs = append(errs, c.checkPaths()...)
	check(c.Listen != "", "listen must not be empty")
	if c.Listen != "" {
		err := checkListen(c.Listen)
		check(err == nil, "listen %q: %v (host:port, e.g. 127.0.0.1:7070)", c.Listen, err)
	}
	check(c.ProxyID <= 1023, "proxy_id %d out of range 0..1023", c.ProxyID)
	check(c.ShutdownTimeout > 0, "shutdown_timeout must be positive")
	check(c.StartTimeout >= 0, "start_timeout must not be negative (0: wait for ever)")
	check(c.Proxy.LeaseTTL >= 3*time.Second && c.Proxy.LeaseTTL <= 10*time.Minute, "proxy.lease_ttl %s out of range 3s..10m", c.Proxy.LeaseTTL)
	check(c.Proxy.ClockSkewAlert > 0, "proxy.clock_skew_alert must be positive")
	check(c.Proxy.MaxBacklog >= 0, "proxy.max_backlog must not be negative (0: off)")
	check(c.Proxy.WritesInFlight >= 1 && c.Proxy.WritesInFlight <= 1024, "proxy.writes_in_flight %d out of range 1..1024", c.Proxy.WritesInFlight)
	check(c.Proxy.MaxMergeBytes >= 1<<20 && c.Proxy.MaxMergeBytes <= 512<<20, "proxy.max_merge_bytes %d out of range %d..%d", c.Proxy.MaxMergeBytes, 1<<20, 512<<20)
	check(c.Proxy.Enabled || c.Resolver.Enabled, "proxy.enabled and resolver.enabled are both false: nothing to run")
	check(c.Limits.MaxKeyBytes > 0 && c.Limits.MaxKeyBytes <= intent.MaxKeyBytes, "limits.max_key_bytes %d out of range 1..%d", c.Limits.MaxKeyBytes, intent.MaxKeyBytes)
	check(c.Store.Kind != StoreMySQL || c.Limits.MaxKeyBytes <= MySQLMaxKeyBytes,
		"limits.max_key_bytes %d: store.kind mysql keeps keys of at most %d bytes (its key column is VARBINARY(%[2]d); a longer key would be refused, or cut short and never found)",
		c.Limits.MaxKeyBytes, MySQLMaxKeyBytes)
	check(c.Store.Kind != StoreCassandra || c.Limits.MaxKeyBytes <= CassandraMaxKeyBytes,
		"limits.max_key_bytes %d: store.kind cassandra keeps keys of at most %d bytes (Cassandra refuses a longer partition key: every write of one would be aborted)",
		c.Limits.MaxKeyBytes, CassandraMaxKeyBytes)
	check(c.Limits.MaxValueBytes > 0 && c.Limits.MaxValueBytes <= 64<<20, "limits.max_value_bytes %d out of range 1..67108864", c.Limits.MaxValueBytes)
	check(c.Limits.MaxBatchMutations > 0, "limits.max_batch_mutations must be positive")
	check(c.Log.SegmentBytes >= 1<<20, "log.segment_bytes %d is below 1 MiB", c.Log.SegmentBytes)
	check(c.Log.Retention >= 0 && c.Log.EventRetention >= 0 && c.Log.DLQRetention >= 0, "log retention must not be negative")
	errs = append(errs, c.Log.validateRetention()...)
	check(c.Log.MaxOpenFiles >= 0, "log.max_open_files %d must not be negative (0: automatic)", c.Log.MaxOpenFiles)
	check(c.Store.VersionCacheKeys >= 0, "store.version_cache_keys %d must not be negative (0: no cache)", c.Store.VersionCacheKeys)
	check(c.Store.RowCacheBytes >= 0, "store.row_cache_bytes %d must not be negative (0: no cache)", c.Store.RowCacheBytes)
	errs = append(errs, c.Store.validate()...)
	errs = append(errs, c.validateAPI()...)
	errs = append(errs, c.validateSchemaRegistry()...)
	errs = append(errs, c.validateSecurity()...)
	errs = append(errs, c.validateTracing()...)
	errs = append(errs, c.validateConsole()...)
	errs = append(errs, c.validateMemory()...)
	errs = append(errs, c.Log.validate()...)
	if m := int64(c.Log.Kafka.MaxMessageBytes); c.Log.Kind == LogKafka && m >= minKafkaMessageBytes &&
		int64(c.Limits.MaxKeyBytes)+int64(c.Limits.MaxValueBytes) >= m {
		errs = append(errs, fmt.Errorf("limits.max_key_bytes %d + limits.max_value_bytes %d do not fit log.kafka.max_message_bytes %d: "+
			"the log would refuse the largest writes the API takes; lower limits.max_value_bytes or raise log.kafka.max_message_bytes",
			c.Limits.MaxKeyBytes, c.Limits.MaxValueBytes, m))
	}
	r := c.Resolver
	check(r.Concurrency >= 1 && r.Concurrency <= maxConcurrency, "resolver.concurrency %d out of range 1..%d", r.Concurrency, maxConcurrency)
	check(r.FirstReadDelay >= 0 && r.FirstReadDelay <= time.Second, "resolver.first_read_delay %s out of range 0..1s", r.FirstReadDelay)
	check(r.BackoffMin > 0 && r.BackoffMax >= r.BackoffMin, "resolver.backoff_min must be positive and <= backoff_max")
	check(r.DedupeHorizon >= time.Second, "resolver.dedupe_horizon must be at least 1s")
	check(r.MaxUnresolved > 0, "resolver.max_unresolved must be positive")
	check(r.Group != "", "resolver.group must not be empty")
	check(r.TransactionProducers >= 1 && r.TransactionProducers <= 64, "resolver.transaction_producers %d out of range 1..64", r.TransactionProducers)
	check(r.TransactionLinger >= 0 && r.TransactionLinger <= time.Second, "resolver.transaction_linger %s out of range 0s..1s", r.TransactionLinger)
	check(r.RetryBackoffMin > 0 && r.RetryBackoffMax >= r.RetryBackoffMin, "resolver.retry_backoff_min must be positive and <= retry_backoff_max")
	check(r.StallAfter >= time.Second, "resolver.stall_after must be at least 1s")
	check(r.Recheck >= 0 && r.Recheck <= 10, "resolver.recheck %g out of range 0..10 (visibility windows)", r.Recheck)
	errs = append(errs, c.validateMinimums()...)
	errs = append(errs, c.validateTables()...)
	errs = append(errs, c.validateSinks()...)
	return errors.Join(errs...)
}

// validateTables checks the budgets, table_defaults and every table with
// the validator the API uses (catalog.Validate), so that no setting loads
// that a create would then refuse.
func (c *Config) validateTables() []error {
	if err := c.CatalogLimits().Check(); err != nil {
		return []error{err}
	}
	var errs []error
	if def, err := c.TableDefaults(); err != nil {
		errs = append(errs, fmt.Errorf("table_defaults: %w", err))
	} else if err := catalog.Validate(def, c.CatalogLimits(), false); err != nil {
		errs = append(errs, fmt.Errorf("table_defaults: %w", err))
	}
	if c.Defaults.Name != "" {
		errs = append(errs, fmt.Errorf("table_defaults.name %q is not a setting: name tables in tables[].name", c.Defaults.Name))
	}
	if d := c.Defaults; d.KeyProto != "" || d.ValueProto != "" || d.KeyMessage != "" || d.ValueMessage != "" || d.Validate != nil {
		errs = append(errs, errors.New("table_defaults: key_proto, key_message, value_proto, value_message and validate are settings of one table: set them in tables[]"))
	}
	seen := map[string]bool{}
	for i, t := range c.Tables {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("tables[%d].name must not be empty", i))
			continue
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("tables[%d]: table %s is listed twice", i, t.Name))
			continue
		}
		seen[t.Name] = true
		if (t.KeyMessage != "" && t.KeyProto == "") || (t.ValueMessage != "" && t.ValueProto == "") {
			errs = append(errs, fmt.Errorf("tables[%d] (%s): key_message and value_message need key_proto or value_proto", i, t.Name))
		}
		def, err := c.TableDef(t)
		if err == nil {
			err = catalog.Validate(c.withDefaults(def), c.CatalogLimits(), true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tables[%d] (%s): %w", i, t.Name, err))
		}
	}
	return errs
}

// CatalogLimits are the partition budgets.
func (c *Config) CatalogLimits() catalog.Limits {
	return catalog.Limits{MaxTablePartitions: c.Limits.MaxTablePartitions, MaxPartitions: c.Limits.MaxPartitions}
}

// TableDefaults is table_defaults as a definition (without a name).
func (c *Config) TableDefaults() (catalog.Table, error) {
	return c.TableDef(c.Defaults)
}

// TableDef converts a table of the configuration; what it leaves out stays
// zero (see Table).
func (c *Config) TableDef(t Table) (catalog.Table, error) {
	var mode catalog.FailureMode
	if t.FailureMode != "" {
		var err error
		if mode, err = catalog.ParseFailureMode(t.FailureMode); err != nil {
			return catalog.Table{}, err
		}
	}
	return catalog.Table{Name: t.Name, FailureMode: mode, VisibilityWindow: t.VisibilityWindow, Partitions: t.Partitions,
		MaxAttempts: t.MaxAttempts, MaxRetryTime: t.MaxRetryTime, SkipValidation: t.Validate != nil && !*t.Validate}, nil
}

// withDefaults fills what def leaves zero from table_defaults.
func (c *Config) withDefaults(def catalog.Table) catalog.Table {
	d, _ := c.TableDefaults()
	return catalog.WithDefaults(def, d)
}

func (l Log) validate() []error {
	var errs []error
	switch l.Kind {
	case LogEmbedded:
		if len(l.Kafka.Brokers) > 0 {
			errs = append(errs, fmt.Errorf("log.kafka.brokers needs log.kind kafka (log.kind is %s: the log would stay in data_dir)", l.Kind))
		}
	case LogKafka:
		if len(l.Kafka.Brokers) == 0 {
			errs = append(errs, errors.New("log.kafka.brokers is required for log.kind kafka"))
		}
		switch l.Kafka.SASL.Mechanism {
		case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			errs = append(errs, fmt.Errorf("log.kafka.sasl.mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", l.Kafka.SASL.Mechanism))
		}
		if l.Kafka.SASL.Mechanism != "" && l.Kafka.SASL.User == "" {
			errs = append(errs, errors.New("log.kafka.sasl.user is required with a SASL mechanism"))
		}
		k := l.Kafka
		if !strings.Contains(k.IntentTopic, "{table}") || !strings.Contains(k.EventTopic, "{table}") || !strings.Contains(k.DLQTopic, "{table}") ||
			k.IntentTopic == k.EventTopic || k.DLQTopic == k.IntentTopic || k.DLQTopic == k.EventTopic {
			errs = append(errs, fmt.Errorf("log.kafka.intent_topic %q, event_topic %q and dlq_topic %q must differ and contain {table}",
				k.IntentTopic, k.EventTopic, k.DLQTopic))
		}
		if m := l.Kafka.MaxMessageBytes; m < minKafkaMessageBytes || m > maxKafkaMessageBytes {
			errs = append(errs, fmt.Errorf("log.kafka.max_message_bytes %d out of range %d..%d", m, minKafkaMessageBytes, maxKafkaMessageBytes))
		}
		if (l.Kafka.TLS.CertFile == "") != (l.Kafka.TLS.KeyFile == "") {
			errs = append(errs, errors.New("log.kafka.tls.cert_file and key_file go together"))
		}
	default:
		errs = append(errs, fmt.Errorf("log.kind %q is not supported (supported: embedded, kafka)", l.Kind))
	}
	return errs
}

func (s Store) validate() []error {
	var errs []error
	switch s.Kind {
	case StorePebble:
		if s.DSN != "" || len(s.ReplicaDSNs) > 0 {
			errs = append(errs, errors.New("store.dsn and store.replica_dsns need store.kind postgres or mysql"))
		}
	case StorePostgres, StoreMySQL:
		if s.DSN == "" {
			errs = append(errs, fmt.Errorf("store.dsn is required for store.kind %s", s.Kind))
		}
	case StoreCassandra:
		if s.DSN != "" || len(s.ReplicaDSNs) > 0 {
			errs = append(errs, errors.New("store.dsn and store.replica_dsns need store.kind postgres or mysql (cassandra: store.cassandra.hosts)"))
		}
		errs = append(errs, s.Cassandra.validate()...)
	default:
		errs = append(errs, fmt.Errorf("store.kind %q is not supported (supported: pebble, postgres, mysql, cassandra)", s.Kind))
	}
	if s.Kind != StoreCassandra && len(s.Cassandra.Hosts) > 0 {
		errs = append(errs, errors.New("store.cassandra.hosts needs store.kind cassandra"))
	}
	if s.MaxConns < 1 || s.MaxConns > maxConns {
		errs = append(errs, fmt.Errorf("store.max_conns %d out of range 1..%d", s.MaxConns, maxConns))
	}
	if s.QueryTimeout <= 0 {
		errs = append(errs, errors.New("store.query_timeout must be positive"))
	}
	if s.ReplicaWait < 0 || s.ReplicaWait >= s.QueryTimeout {
		errs = append(errs, fmt.Errorf("store.replica_wait %s must be at least 0s and below store.query_timeout", s.ReplicaWait))
	}
	if s.ReplicaBreakerFailures < 0 {
		errs = append(errs, fmt.Errorf("store.replica_breaker_failures %d must be at least 0 (0: never bypass a replica)", s.ReplicaBreakerFailures))
	}
	if s.ReplicaBreakerBackoff < 0 || s.ReplicaBreakerMaxBackoff < 0 || s.ReplicaBreakerMaxBackoff > 0 && s.ReplicaBreakerMaxBackoff < s.ReplicaBreakerBackoff {
		errs = append(errs, fmt.Errorf("store.replica_breaker_backoff %s must be at least 0s (0s: 1s) and at most store.replica_breaker_max_backoff %s", s.ReplicaBreakerBackoff, s.ReplicaBreakerMaxBackoff))
	}
	return errs
}

// checkListen checks a listen address: host:port with a port of 0..65535
// (0: any free one) or a service name.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	switch n, err := strconv.Atoi(port); {
	case port == "": // as 0
		return nil
	case strings.Trim(port, "-+0123456789") == "": // a number
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %s out of range 0..65535", port)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: not a number nor a known service", port)
	}
	return nil
}

// ResolverInstance is resolver.instance_id, or its default: the host name
// and the listen port.
func (c *Config) ResolverInstance() string {
	if c.Resolver.InstanceID != "" {
		return c.Resolver.InstanceID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "wail"
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" || port == "0" {
		return host
	}
	return host + "-" + port
}
