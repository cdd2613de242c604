package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/pebble"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
	"github.com/wail-cdc/wail/internal/telemetry"
	"github.com/wail-cdc/wail/internal/vfs"
)

// seams are what a server's own tests put under the log and the store:
// filesystems with faults, and the log's health callback.
type seams struct {
	logFS       vfs.FS                        // the embedded log's (nil: the OS's)
	onLogHealth func(error)                   // embedded.Options.OnHealth
	storeFS     pebblevfs.FS                  // Pebble's (nil: the OS's)
	tracing     *telemetry.Tracing            // instead of the configured tracing (tests)
	afterStore  func() error                  // Server.open, once the store is open: an error fails that attempt (tests)
	wrapStore   func(store.Store) store.Store // Server.open: the store the server uses instead of the one opened (tests)
	kafkaOpts   []kgo.Opt                     // kafka.Options.ExtraClientOpts (tests: a short metadata refresh)
	existing    bool                          // the Options.Existing of the PostgreSQL, MySQL and Cassandra stores: create nothing (doctor)
}

// Both logs tell the resolver how large an append may be (Server.open).
var (
	_ resolver.AppendLimiter = (*embedded.Log)(nil)
	_ resolver.AppendLimiter = (*kafka.Log)(nil)
)

// OpenLog opens the log (intent log and event bus) the configuration names.
func OpenLog(ctx context.Context, cfg config.Config, logger *slog.Logger) (intentlog.Log, error) {
	return openLog(ctx, cfg, logger, seams{})
}

func openLog(ctx context.Context, cfg config.Config, logger *slog.Logger, sm seams) (intentlog.Log, error) {
	if cfg.Log.Kind == config.LogKafka {
		return openKafka(ctx, cfg.Log.Kafka, logger, sm.kafkaOpts)
	}
	// Segment files, store files and connections need more than the
	// usual soft limit of 1024 descriptors.
	if _, err := vfs.RaiseOpenFileLimit(); err != nil {
		logger.Warn("cannot raise the open file limit (RLIMIT_NOFILE) to the hard limit; raise it (ulimit -n) if the log reports too many open files", "err", err)
	}
	l, err := embedded.Open(filepath.Join(cfg.DataDir, "log"), embedded.Options{
		SegmentBytes: cfg.Log.SegmentBytes, NoSync: cfg.Log.NoSync, MaxOpenFiles: cfg.Log.MaxOpenFiles, Logger: logger,
		SyncFilesystem: cfg.Log.SyncFilesystem,
		FS:             sm.logFS, OnHealth: sm.onLogHealth,
	})
	if err != nil {
		return nil, fmt.Errorf("open embedded log: %w", err)
	}
	return l, nil
}

func openKafka(ctx context.Context, k config.Kafka, logger *slog.Logger, extra []kgo.Opt) (intentlog.Log, error) {
	opts := kafkaOptions(k, logger)
	opts.ExtraClientOpts = extra
	l, err := kafka.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open kafka log: %w", err)
	}
	if err := l.Ping(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("kafka brokers %v: %w", k.Brokers, err)
	}
	return l, nil
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (store.Store, error) {
	return openStore(ctx, cfg, logger, seams{})
}

func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger, sm seams) (store.Store, error) {
	switch cfg.Store.Kind {
	case config.StorePebble:
		// pebble.Options: a negative bound turns a cache off, 0 is its default.
		versions, rows := cfg.Store.VersionCacheKeys, cfg.Store.RowCacheBytes
		if versions == 0 {
			versions = -1
		}
		if rows == 0 {
			rows = -1
		}
		st, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{NoSync: cfg.Store.NoSync, Logger: logger, FS: sm.storeFS,
			VersionCacheKeys: versions, RowCacheBytes: rows})
		if err != nil {
			return nil, fmt.Errorf("open pebble store: %w", err)
		}
		return st, nil
	case config.StorePostgres:
		wait := cfg.Store.ReplicaWait
		if wait == 0 {
			wait = -1 // postgres.Options: negative reads at once
		}
		st, err := postgres.Open(ctx, postgres.Options{
			DSN: cfg.Store.DSN, ReplicaDSNs: cfg.Store.ReplicaDSNs, MaxConns: int32(cfg.Store.MaxConns),
			QueryTimeout: cfg.Store.QueryTimeout, ReplicaWait: wait, Breaker: replicaBreaker(cfg.Store), Logger: logger,
			Existing: sm.existing,
		})
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return st, nil
	case config.StoreMySQL:
		st, err := mysql.Open(ctx, mysql.Options{
			DSN: cfg.Store.DSN, ReplicaDSNs: cfg.Store.ReplicaDSNs, MaxConns: int32(cfg.Store.MaxConns),
			QueryTimeout: cfg.Store.QueryTimeout, Breaker: replicaBreaker(cfg.Store), Logger: logger,
			Existing: sm.existing,
		})
		if err != nil {
			return nil, fmt.Errorf("open mysql store: %w", err)
		}
		return st, nil
	case config.StoreCassandra:
		st, err := openCassandraWith(ctx, cfg.Store, logger, sm.existing)
		if err != nil {
			return nil, err // not a nil *cassandra.Store in a non-nil store.Store
		}
		return st, nil
	}
	return nil, fmt.Errorf("store kind %q is not supported", cfg.Store.Kind)
}

// GroupJoin returns the resolver's JoinFunc on a Kafka log: a member of
// group with the instance id, publishing in transactions of producers
// transactional producers. Other logs have no groups (nil).
func GroupJoin(log intentlog.Log, group, instance string, producers int) resolver.JoinFunc {
	kl, ok := log.(*kafka.Log)
	if !ok {
		return nil
	}
	return func(topics []string, assigned, revoked func(map[string][]int32)) (resolver.Group, error) {
		m, err := kl.Join(kafka.MemberOptions{
			Group: group, InstanceID: instance, Topics: topics, OnAssigned: assigned, OnRevoked: revoked,
			Producers: producers,
		})
		if err != nil {
			return nil, err
		}
		return groupMember{m}, nil
	}
}

// groupMember maps the Kafka member's errors to the resolver's.
type groupMember struct{ *kafka.Member }

func (g groupMember) Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	return g.mapErr(g.Member.Transact(ctx, shard, recs, offsets))
}

// TransactEpochs implements resolver.EpochGroup: the offsets are committed
// with their leader epochs.
func (g groupMember) TransactEpochs(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error {
	return g.mapErr(g.Member.TransactEpochs(ctx, shard, recs, offsets))
}

func (g groupMember) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case kafka.IsAborted(err) && (errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)):
		// A record too large for the topic aborted the transaction: the
		// record's fault, for good (the resolver dead-letters it).
		return fmt.Errorf("%w: %w: %w", resolver.ErrAborted, intentlog.ErrTooLarge, err)
	case kafka.IsAborted(err):
		return fmt.Errorf("%w: %w", resolver.ErrAborted, err)
	case errors.Is(err, kafka.ErrFenced):
		return fmt.Errorf("%w: %w", resolver.ErrFenced, err)
	}
	return err
}

// replicaBreaker is the SQL stores' replica circuit breaker of the
// store.replica_breaker_* settings (0 failures: never open).
func replicaBreaker(c config.Store) sqlstore.Breaker {
	b := sqlstore.Breaker{Failures: c.ReplicaBreakerFailures, Backoff: c.ReplicaBreakerBackoff, MaxBackoff: c.ReplicaBreakerMaxBackoff}
	if b.Failures == 0 {
		b.Failures = -1
	}
	return b
}

// replicaBypasser is a store whose replicas have circuit breakers
// (postgres.Store.ReplicasBypassed, mysql.Store.ReplicasBypassed).
type replicaBypasser interface {
	ReplicasBypassed() (replicas int, reads uint64)
	BypassedReplicas() []error
}

var (
	_ replicaBypasser = (*postgres.Store)(nil)
	_ replicaBypasser = (*mysql.Store)(nil)
)

// replicaWaiter is a store whose replica reads wait for the replica to
// catch up (postgres.Store.ReplicaWaits).
type replicaWaiter interface {
	ReplicaWaits() (waited, stale uint64)
}

var (
	_ replicaRefuser = (*postgres.Store)(nil)
	_ replicaRefuser = (*mysql.Store)(nil)
)

// replicaRefuser is a store that refuses replicas whose reads do not show
// the primary's rows (postgres.Store.ReplicasRefused,
// mysql.Store.ReplicasRefused).
type replicaRefuser interface {
	ReplicasRefused() int
}

// registerStoreMetrics exports what the store counts of its own (0 for a
// store that does not count it).
func registerStoreMetrics(reg prometheus.Registerer, st store.Store) {
	if reg == nil {
		return
	}
	waits := func(stale bool) float64 {
		rw, ok := st.(replicaWaiter)
		if !ok {
			return 0
		}
		w, s := rw.ReplicaWaits()
		if stale {
			return float64(s)
		}
		return float64(w)
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wail_store_replica_waits_total",
		Help: "PostgreSQL replica reads that waited for their replica to replay the primary's WAL of when they were asked (store.replica_wait).",
	}, func() float64 { return waits(false) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wail_store_replica_stale_reads_total",
		Help: "PostgreSQL replica reads whose wait ran out (store.replica_wait) before the replica caught up; they read it anyway and mostly escalate.",
	}, func() float64 { return waits(true) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wail_store_replicas_refused",
		Help: "SQL store replicas refused because their reads do not show the primary's rows (PostgreSQL: another cluster, database or schema; MariaDB/MySQL: another wail database, or the primary's server reading another database; fix store.replica_dsns); their reads go to the next level.",
	}, func() float64 {
		if rr, ok := st.(replicaRefuser); ok {
			return float64(rr.ReplicasRefused())
		}
		return 0
	}))
	bypassed := func() (int, uint64) {
		if rb, ok := st.(replicaBypasser); ok {
			return rb.ReplicasBypassed()
		}
		return 0, 0
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wail_store_replicas_bypassed",
		Help: "SQL store replicas whose reads go to the next level at once (their circuit breaker is open: their last store.replica_breaker_failures reads timed out or lost the connection; a read probes them again after store.replica_breaker_backoff); check the replica's host and the network to it.",
	}, func() float64 { n, _ := bypassed(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wail_store_replica_reads_bypassed_total",
		Help: "SQL store replica reads failed at once as unavailable, without going to the replica, because its circuit breaker was open; the resolver read the next level instead.",
	}, func() float64 { _, r := bypassed(); return float64(r) }))
	if er, ok := st.(engineReporter); ok {
		reg.MustRegister(newEngineCollector(er))
	}
}

// kafkaOptions turns the log.kafka configuration into the Kafka log's
// options.
func kafkaOptions(k config.Kafka, logger *slog.Logger) kafka.Options {
	opts := kafka.Options{
		Brokers: k.Brokers, ClientID: k.ClientID, ReplicationFactor: k.ReplicationFactor,
		TLSCAFile: k.TLS.CAFile, TLSCertFile: k.TLS.CertFile, TLSKeyFile: k.TLS.KeyFile,
		MaxMessageBytes: k.MaxMessageBytes,
		SASL:            kafka.SASL{Mechanism: k.SASL.Mechanism, User: k.SASL.User, Password: k.SASL.Password},
		Logger:          logger,
		TopicNames: []kafka.TopicName{
			{Prefix: intent.Topic(""), Template: k.IntentTopic},
			{Prefix: eventbus.Topic(""), Template: k.EventTopic},
			{Prefix: dlq.Topic(""), Template: k.DLQTopic},
		},
	}
	if k.TLS.Enabled && opts.TLSCAFile == "" && opts.TLSCertFile == "" {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // the system roots
	}
	return opts
}
