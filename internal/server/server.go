// Package server assembles a wail process from its configuration: the
// log (embedded or Kafka: the intent log and the event bus), the store
// (pebble, PostgreSQL, MariaDB/MySQL or Cassandra; backends.go), the
// catalog, the proxy, the resolver, the webhook sinks, the schema registry
// and the HTTP server that carries the API, and runs them until shutdown.
//
// Shutdown order: stop accepting requests and finish the ones in flight
// (http.Server.Shutdown; the webhook sinks and event streams are ended
// first so they do not hold it up), then stop the resolver (it drains reads and publishes in flight
// and commits), then close the log and the store. All of it ends within
// shutdown_timeout, whatever the disk does.
//
// A storage failure that only a restart recovers from (the store stopped, a
// log partition broke) makes the process stop taking writes at once, report
// unhealthy, shut down the same way and exit with ExitFailStop; a full disk
// under the log is unhealthy until space returns (failstop.go).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/landing"
	"github.com/wail-cdc/wail/internal/lease"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/readahead"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/schemaregistry"
	"github.com/wail-cdc/wail/internal/sink"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// minCompressBytes: smaller messages go uncompressed.
const minCompressBytes = 4 << 10

// Server is one wail process.
type Server struct {
	cfg    config.Config
	logger *slog.Logger

	log      intentlog.Log
	store    store.Store
	bus      *eventbus.Bus
	catalog  *catalog.Catalog
	proxy    *proxy.Proxy
	resolver *resolver.Resolver
	events   *eventbus.Service
	// sinks are the webhook sinks (admin_sink.go).
	sinks    *sink.Manager
	registry *prometheus.Registry
	// schemas is the schema registry; values checks typed tables' writes
	// against it (typed.go).
	// schemas is the registry typed tables use; ownSchemas wail's own
	// (nil with an external one: schema_registry.url).
	schemas    schemaSource
	ownSchemas *schemaregistry.Registry
	// externalAPI passes /registry reads on to the external registry.
	externalAPI http.Handler
	values      *typedValues
	// health is what /healthz reports; components raise conditions on it.
	health *health.Registry
	// tracing traces writes (nil: off; cfg.Tracing); traceWarned is
	// when an export failure was last logged (unix ns).
	tracing     *telemetry.Tracing
	traceWarned atomic.Int64
	// console is the web console (nil: console.enabled is false).
	console *console.Console

	seams seams
	// stopping is set (to the cause) once a storage failure makes the
	// process stop (failstop.go); failed then tells Run.
	stopping atomic.Pointer[error]
	failed   chan error
	// streams are the event streams' limits, writeStreams the write
	// streams' (budget.go).
	streams      api.SlotLimits
	writeStreams api.StreamLimits
	// producer is the ProducerService, once Handler made it.
	producer *api.ProducerService
	// eventService serves events: the bus's streams and groups.
	eventService *api.EventService
	// admission refuses writes past the resolver's rate (overload.go).
	admission    *proxy.Admission
	backlogGauge *prometheus.GaugeVec // wail_proxy_backlog_intents, with admission
	clock        *hlc.Clock
	// opened is set once open succeeded (start.go).
	opened bool
	lease  *lease.Keeper // the proxy id's, on a shared store (lease.go)
	// leaseLapsed: the lapse of the lease was logged, its renewal not yet
	// (leaseHealth).
	leaseLapsed atomic.Bool
	// leaseHolder is who claims it, the same in every attempt of a start.
	leaseHolder store.Lease
	// clockWatch alerts on clock skew (clock.go).
	clockWatch *clockWatch
	// starting says what the start waits for (start.go).
	starting atomic.Pointer[string]
	// inflight are the requests being served (what a shutdown waits for).
	inflight inflight
	// fresh are the connections without a request yet (closed at shutdown).
	fresh fresh
	// conns counts the API port's connections (api.max_connections).
	conns *connLimit
	// bodies counts the request bodies held
	// (api.max_request_bytes_in_flight).
	bodies *bodyBudget
	// readAhead is what event streams hold read ahead of their clients
	// (api.max_subscription_buffered_bytes).
	readAhead *readahead.Pool
	// retentionGaps counts the retention gaps event streams meet
	// (Subscribe, groups, sinks); registered once, in newServer.
	retentionGaps *group.RetentionGaps
	// httpLog takes net/http's lines (httplog.go).
	httpLog *httpLog
	// guard authenticates and authorizes requests; tls is the API port's
	// TLS, nil without (security.go).
	guard *api.Guard
	tls   *tls.Config
	// routes are the patterns of the last handler made (for tests: each
	// must have a permission, api.Covered).
	routes []string
	// testHookServing, if set, runs once Serve answers, before the start
	// (tests look at the server in that window).
	testHookServing func()
	// testHookShutdown, if set, runs once the shutdown began, before it
	// stops serving.
	testHookShutdown func()
}

// New opens everything the configuration names, unless it names a remote
// dependency (Kafka, a SQL store): Run then opens it, listening meanwhile
// and waiting for the dependency (start.go). New does not listen.
func New(cfg config.Config, logger *slog.Logger) (*Server, error) {
	return newServer(cfg, logger, seams{})
}

func newServer(cfg config.Config, logger *slog.Logger, sm seams) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{cfg: cfg, logger: logger, registry: prometheus.NewRegistry(), seams: sm, failed: make(chan error, 1)}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.health = health.NewRegistry(s.registry)
	s.streams = s.streamLimits()
	s.writeStreams = s.writeStreamLimits()
	s.conns = newConnLimit(s.registry, cfg.API.MaxConnections, cfg.API.MaxConnectionsPerClient)
	s.bodies = newBodyBudget(s.registry, cfg.API.MaxRequestBytesInFlight)
	s.readAhead = newReadAhead(s.registry, cfg.API.MaxSubscriptionBufferedBytes)
	s.httpLog = newHTTPLog(s.logger, s.registry)
	s.clockWatch = newClockWatch(s.registry)
	s.retentionGaps = group.NewRetentionGaps(s.registry)
	if err := s.openSecurity(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.tracing = sm.tracing; s.tracing == nil && cfg.Tracing.Enabled {
		tc := cfg.Tracing
		var err error
		if s.tracing, err = telemetry.NewTracing(context.Background(), telemetry.TraceOptions{
			Endpoint: tc.Endpoint, SampleRatio: tc.SampleRatio, ServiceName: tc.ServiceName, OnError: s.traceExportFailed,
		}); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if !s.remote() {
		if err := s.open(context.Background()); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// open opens the log, the store and what lives on them. It runs again
// after an error that says a dependency cannot be reached yet (start.go),
// keeping the log and store it opened: steps that register metrics go
// last, after every step that can fail.
func (s *Server) open(ctx context.Context) error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("server: data dir: %w", err)
	}
	var err error
	logSeams := s.seams
	if logSeams.onLogHealth == nil {
		logSeams.onLogHealth = s.logHealth
	}
	if s.log == nil {
		if s.log, err = openLog(ctx, cfg, s.logger, logSeams); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if s.store == nil {
		if s.store, err = openStore(ctx, cfg, s.logger, s.seams); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if s.seams.wrapStore != nil {
			s.store = s.seams.wrapStore(s.store)
		}
		// Once per store: a later step that fails runs open again
		// (start.go), and a second registration would panic.
		registerStoreMetrics(s.registry, s.store)
	}
	if s.seams.afterStore != nil {
		if err := s.seams.afterStore(); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	s.bus = eventbus.New(s.log)
	if err := s.openSchemas(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := s.openCatalog(ctx); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	clock, err := hlc.New(cfg.ProxyID, nil)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := s.observeLoggedVersions(ctx, clock); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.clock = clock
	limits := proxy.Limits{
		MaxKeyBytes: cfg.Limits.MaxKeyBytes, MaxValueBytes: cfg.Limits.MaxValueBytes, MaxBatch: cfg.Limits.MaxBatchMutations,
		WritesInFlight: cfg.Proxy.WritesInFlight, MaxMergeBytes: cfg.Proxy.MaxMergeBytes,
	}
	if lg, ok := s.log.(*embedded.Log); ok {
		// The embedded log refuses a larger Append as a whole; Kafka's
		// producer splits an Append into record batches itself.
		limits.Intents = lg
	}
	if bus, ok := s.log.(proxy.RecordLimiter); ok {
		limits.Bus = bus // values whose events would not fit the bus are refused
	}
	// The console's charts read some of these metrics (console.Registerer).
	reg, charted := console.Registerer(s.registry)
	// The resolver holds its reads of versions the proxy is still writing.
	inFlight := landing.New()
	proxyMetrics := proxy.NewMetrics(reg)
	s.proxy = proxy.New(s.log, s.store, s.catalog, clock, limits, proxyMetrics).WithTracing(s.tracing).WithLanding(inFlight).
		WithAdmit(s.admitWrites).WithHold(s.holdStamped)
	s.proxy.SetValidator(s.values)
	s.proxy.SetPrinter(s.values)
	if cfg.Proxy.Enabled && cfg.Proxy.MaxBacklog > 0 {
		s.admission = proxy.NewAdmission(cfg.Proxy.MaxBacklog)
		s.proxy.WithAdmission(s.admission)
		s.backlogGauge = newBacklogGauge(reg)
	}
	rc := cfg.Resolver
	appendLimits, _ := s.log.(resolver.AppendLimiter) // both logs tell; else the resolver's default
	s.resolver = resolver.New(s.log, s.store, s.bus, resolver.Config{
		Group: rc.Group, Concurrency: rc.Concurrency, FirstReadDelay: rc.FirstReadDelay, BackoffMin: rc.BackoffMin, BackoffMax: rc.BackoffMax,
		Horizon: rc.DedupeHorizon, CommitInterval: rc.CommitInterval, MaxUnresolved: rc.MaxUnresolved,
		RetryMin: rc.RetryBackoffMin, RetryMax: rc.RetryBackoffMax, StallAfter: rc.StallAfter, Recheck: rc.Recheck,
		InstanceID: cfg.ResolverInstance(), Health: s.health, Limits: appendLimits,
		Logger: s.logger, Metrics: resolver.NewMetrics(reg), Tracing: s.tracing, Join: GroupJoin(s.log, rc.Group, cfg.ResolverInstance(), rc.TransactionProducers),
		TransactionLinger: rc.TransactionLinger,
		Tables:            s.catalog.Resolving, CatalogFresh: s.catalogFresh, CatalogRefresh: cfg.CatalogRefresh, Landing: inFlight,
		LocalProxy: cfg.ProxyID, LocalProxyServes: cfg.Proxy.Enabled, ReadBackWrites: rc.ReadBackWrites,
		// Half of shutdown_timeout: the HTTP server has the other half.
		DrainTimeout: cfg.ShutdownTimeout / 2,
	})
	if cfg.Console.Enabled {
		s.console = console.New(console.Options{Gatherer: charted, PartitionWrites: proxyMetrics.PartitionWrites().Table,
			Caller: func(r *http.Request) (bool, auth.Principal, []auth.Grant) {
				p, grants := s.guard.Caller(r)
				return s.guard.Enabled(), p, grants
			},
			Recheck: s.guard.Rechecker, Table: s.catalog.Get, Log: s.log, Logger: s.logger,
			RetentionGaps: s.retentionGaps, MaxTails: cfg.Console.MaxTails, MaxHistories: cfg.Console.MaxHistories, HistoryScan: cfg.Console.HistoryRecords, AllowedOrigins: cfg.Console.AllowedOrigins})
	}
	groups := group.New(s.log, cfg.API.GroupLeaseTimeout).WithReadAhead(int64(cfg.API.SubscriptionBufferBytes), s.readAhead).WithLogger(s.logger).
		WithCommitRefresh(cfg.API.GroupCommitRefresh).WithRetentionGaps(s.retentionGaps)
	var sharing *group.Sharing
	if cfg.Store.Kind != config.StorePebble && cfg.Log.Kind == config.LogKafka {
		// Several processes may serve one group's members, and run
		// sinks: membership and leases in the shared store's catalog
		// (DESIGN.md, "Groups across processes").
		sharing = &group.Sharing{Store: s.store, Process: processID(), Lease: cfg.API.GroupLeaseTimeout, Logger: s.logger, Health: s.health}
		groups.Share(*sharing)
	}
	s.registry.MustRegister(groups.Collector())
	s.events = eventbus.NewService(s.bus, s.partitions).WithTableCreated(s.tableCreated).WithLimits(eventbus.Limits{BufferBytes: int64(cfg.API.SubscriptionBufferBytes), Pool: s.readAhead}).
		WithSnapshots(s.snapshots()).WithGroups(groups).WithLogger(s.logger).
		WithRetentionGaps(s.retentionGaps)
	s.eventService = api.NewEventService(s.events).WithLimits(s.streams)
	sinkTLS, err := api.ClientTLS(cfg.Sinks.TLS, cfg.Security.ReloadInterval, s.reloadProblem(sinksTLSComponent,
		"sinks.tls's client certificate", "check that sinks.tls.cert_file and key_file match and are PEM"))
	if err != nil {
		return fmt.Errorf("server: sinks.tls: %w", err)
	}
	s.sinks = sink.New(sink.Options{Client: sink.NewHTTPClient(sinkTLS), Backend: s.store, Log: s.log, Table: s.groupTable, Incarnation: s.tableIncarnation, Run: cfg.Sinks.Enabled,
		Refresh: cfg.Sinks.Refresh, DLQRetention: cfg.Log.DLQRetention, LetterOwner: letterOwner, Health: s.health, Registerer: s.registry, Logger: s.logger,
		Snapshot: s.events.Stream, Sharing: sharing, ReadAhead: int64(cfg.API.SubscriptionBufferBytes), ReadAheadPool: s.readAhead,
		CommitRefresh: cfg.API.GroupCommitRefresh, RetentionGaps: s.retentionGaps})
	s.events.WithSinks(s.sinks.WhilePaused)
	s.opened = true
	return nil
}

// observeWindow is how many of a partition's last writes
// observeLoggedVersions reads at least. Not only the last: the newest
// version need not be the last record, since two writes stamped in one
// order can be appended in the other.
const observeWindow = 1024

// observeLoggedVersions moves the clock past the newest version of every
// partition's last observeWindow writes and of every record logged after
// them, so versions keep increasing across a restart even if the wall
// clock went back while the process was down. Records logged with an
// older version than the partition's newest (a redrive's or a reconcile's,
// which carry a PublishedFloor, and aborts) do not count towards the
// window: however many of them follow the proxy's last write, the scan
// goes back to it.
func (s *Server) observeLoggedVersions(ctx context.Context, clock *hlc.Clock) error {
	for _, t := range s.catalog.List() {
		if _, ok := s.catalog.Resolving(t.Name); !ok {
			continue // no topics here (yet), or being deleted
		}
		topic := intent.Topic(t.Name)
		for p := int32(0); p < t.Partitions; p++ {
			// Retention can pass the scan meanwhile: take the bounds again.
			for try := 1; ; try++ {
				err := observePartition(ctx, s.log, topic, p, clock)
				if err == nil {
					break
				}
				if !errors.Is(err, intentlog.ErrOffsetOutOfRange) || try == 3 {
					return err
				}
			}
		}
	}
	return nil
}

// observePartition observes a partition's intents from its end back to
// where observeWindow writes were seen (or its start), a window at a time.
func observePartition(ctx context.Context, log intentlog.Log, topic string, p int32, clock *hlc.Clock) error {
	start, end, err := log.Bounds(ctx, topic, p)
	if err != nil {
		return fmt.Errorf("bounds of %s/%d: %w", topic, p, err)
	}
	for writes := 0; end > start && writes < observeWindow; {
		from := max(start, end-observeWindow)
		n, err := observeTail(ctx, log, topic, p, from, end, clock)
		if err != nil {
			return err
		}
		writes += n
		end = from
	}
	return nil
}

// observeTail observes the versions of the intents [from, end) of a
// partition and returns how many were writes (not a redrive's, a
// reconcile's or an abort).
func observeTail(ctx context.Context, log intentlog.Log, topic string, p int32, from, end int64, clock *hlc.Clock) (writes int, err error) {
	r, err := log.NewReader(topic, p, from)
	if err != nil {
		return 0, fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer r.Close()
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read %s/%d at %d: %w", topic, p, r.Position(), err)
		}
		for _, rec := range recs {
			if rec.Offset >= end {
				break
			}
			in, err := intent.UnmarshalIntent(rec.Value)
			if err != nil {
				continue
			}
			clock.Observe(in.Version)
			if in.Op != intent.Abort && in.PublishedFloor == 0 {
				writes++
			}
		}
	}
	return writes, nil
}

// Log returns the process's log (intent log, event bus and dead-letter
// topics), for tools and tests in the same process.
func (s *Server) Log() intentlog.Log { return s.log }

// Store returns the process's store, for tools and tests in the same
// process.
func (s *Server) Store() store.Store { return s.store }

// Health returns the process's health registry.
func (s *Server) Health() *health.Registry { return s.health }

func (s *Server) partitions(table string) (int32, bool) {
	t, ok := s.catalog.Get(table)
	return t.Partitions, ok
}

// tableCreated returns a table's creation time in Unix microseconds (0:
// unknown), which event cursors carry.
func (s *Server) tableCreated(table string) int64 {
	t, ok := s.catalog.Get(table)
	if !ok || t.CreatedAt.IsZero() {
		return 0
	}
	return t.CreatedAt.UnixMicro()
}

// Handler returns the HTTP handler of the API, /metrics and /healthz (see
// package health: 200 when ok or degraded, 503 when unhealthy).
func (s *Server) Handler() http.Handler {
	mux := api.NewMux()
	svc := api.Services{Admin: s.adminService(), Events: s.eventService, MaxMessages: maxRequestMessages(&s.cfg),
		ProducerOptions: []connect.HandlerOption{connect.WithInterceptors(s.refuseWhenStopping())}}
	if !s.cfg.API.CompressEvents {
		// never: see api.compress_events
		svc.EventOptions = []connect.HandlerOption{connect.WithCompressMinBytes(math.MaxInt)}
	}
	if s.cfg.Proxy.Enabled {
		svc.Producer, svc.MaxBatch = s.producerService(), s.cfg.Limits.MaxBatchMutations
		if !s.cfg.API.CompressWriteAnswers {
			// never: see api.compress_write_answers
			svc.WriteOptions = []connect.HandlerOption{connect.WithCompressMinBytes(math.MaxInt)}
		}
	}
	opts := append([]connect.HandlerOption{
		budgetOptions(&s.cfg), // request size caps (budget.go)
		connect.WithRecover(s.recovered),
		// Compressing small answers and events costs more CPU than it saves.
		connect.WithCompressMinBytes(minCompressBytes),
	}, s.guard.Options()...) // authentication, authorization, audit (package api)
	api.Mount(mux, svc, opts...)
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if s.console != nil {
		mux.Handle("/console/", s.console.Handler())
	}
	mux.Handle("/healthz", s.health.HandlerFor(s.guard.HealthDetail))
	if s.cfg.SchemaRegistry.Enabled {
		mux.Handle(config.SchemaRegistryPath+"/", s.schemaRegistry())
	}
	return s.traced(s.guarded(mux))
}

// traceExportFailed logs, at most once a minute, that spans cannot be
// exported (writes go on; the spans are lost).
func (s *Server) traceExportFailed(err error) {
	now := time.Now().UnixNano()
	last := s.traceWarned.Load()
	if now-last < int64(time.Minute) || !s.traceWarned.CompareAndSwap(last, now) {
		return
	}
	s.logger.Warn("tracing: spans cannot be exported and are dropped (writes are not affected); check that the OpenTelemetry collector "+
		"at tracing.endpoint is up and takes OTLP/HTTP", "endpoint", s.cfg.Tracing.Endpoint, "err", err)
}

// traced continues the caller's W3C trace context (traceparent header)
// in the request's context, when tracing is on.
func (s *Server) traced(h http.Handler) http.Handler {
	if !s.tracing.On() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(s.tracing.Extract(r.Context(), r.Header)))
	})
}

func (s *Server) recovered(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
	s.logger.Error("panic in a request handler; the request failed, the server goes on", "procedure", spec.Procedure, "panic", p)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("internal error"))
}

// Run listens on cfg.Listen, calls ready with the bound address once it
// serves, and serves until ctx ends; then it stops accepting writes,
// finishes in-flight ones, drains the resolver, commits and closes. It
// returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context, ready func(addr string)) error {
	ln, err := Listen(s.cfg.Listen, "listen (--listen)")
	if err != nil {
		return errors.Join(err, s.closeBy(time.Time{}))
	}
	return s.Serve(ctx, ln, ready)
}

// Listen listens on addr, the value of setting; its error says what to
// run and change for the usual causes (another process on the port, a
// port below 1024 without the right, an address of no interface here).
// wail serve listens before New, so a failure leaves nothing created.
func Listen(addr, setting string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	_, port, _ := net.SplitHostPort(addr)
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = fmt.Sprintf("another process listens there (ss -ltnp 'sport = :%s' names it): stop it, or set %s to a free address", port, setting)
	case errors.Is(err, syscall.EACCES):
		hint = fmt.Sprintf("a port below 1024 needs root or CAP_NET_BIND_SERVICE: set %s to a port above 1023, or grant the capability", setting)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = fmt.Sprintf("no interface of this host has that address (ip -brief address lists them): set %s to one of them, 127.0.0.1 or 0.0.0.0", setting)
	default:
		return nil, fmt.Errorf("server: %s %s: %w", setting, addr, err)
	}
	return nil, fmt.Errorf("server: %s %s: %w; %s", setting, addr, err, hint)
}

// maxReadFrameBytes is the largest HTTP/2 frame the server takes, the
// least every peer must take (RFC 9113): Go reads a frame into a buffer
// of its announced size, allocated when its nine-byte header arrives and
// kept by the connection, so its default of 1 MiB let api.max_connections
// clients that send one header each hold 4 GiB. Clients send frames of
// 16 KiB anyway (gRPC, Go's) unless the server announces more.
const maxReadFrameBytes = 16 << 10

// streamWindow is the HTTP/2 flow-control window of one call on a
// connection whose window is conn. Go's server gives the connection's
// window back only as handlers read, so what a call's client sent and
// its handler has not read holds that much of the connection's window:
// were a call's window the connection's, one call that stopped reading
// (a write stream whose batches wait for their answers, a handler that
// has not read yet) would leave its neighbours on the connection (a
// client multiplexes its calls on one; a proxy its clients) a few bytes
// a round trip (TestStalledStreamLeavesConnectionWindow).
func streamWindow(conn int) int { return conn / 2 }

// Serve is Run on a listener of the caller's. /healthz and /metrics answer
// at once; the API answers Unavailable, saying what the server waits for,
// until the log and store are open (start.go). A ctx that ends before then
// makes it return nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(addr string)) (err error) {
	// Set when shutdown starts: draining and closing end by then.
	var deadline time.Time
	defer func() { err = errors.Join(err, s.closeBy(deadline)) }()
	// HTTP/1.1 and HTTP/2 (h2c without TLS, for gRPC clients) on one port.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	var front gate
	front.set(s.startingHandler())
	// Unhealthy from the first answer: /healthz must not say 200 while the
	// API still answers Unavailable (a client that waits for /healthz
	// would then fail its first call).
	s.setStarting(s.firstStartStep(), "wait; if it lasts, see the process's log")
	// Read and write timeouts are per request (budget.go): server-wide
	// ones would cut event streams.
	hs := &http.Server{Handler: s.conns.wrap(s.inflight.wrap(&front)), Protocols: &protocols,
		ReadHeaderTimeout: s.cfg.API.ReadHeaderTimeout, IdleTimeout: s.cfg.API.IdleTimeout,
		MaxHeaderBytes: s.cfg.API.MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: s.cfg.API.MaxStreamsPerConnection, MaxReadFrameSize: maxReadFrameBytes,
			MaxReceiveBufferPerConnection: s.cfg.API.ReceiveWindowBytes, MaxReceiveBufferPerStream: streamWindow(s.cfg.API.ReceiveWindowBytes)},
		ConnState: s.fresh.track, ConnContext: connContext, ErrorLog: s.httpLog.stdLogger()}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serveTLS(hs, s.conns.listener(ln)) }()
	stopMetrics, err := s.serveMetrics()
	if err != nil {
		_ = hs.Close()
		return err
	}
	defer stopMetrics()
	if s.testHookServing != nil {
		s.testHookServing()
	}
	if err := s.start(ctx); err != nil {
		_ = hs.Close()
		if s.lease != nil {
			s.lease.Release()
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.setStarting(startingAPI, "wait; if it lasts, see the process's log")
	// With tokens in the catalog, read them before the API answers. A
	// failure went to OnTokensError (/healthz, the log); tokens are
	// refused until a read works.
	refreshTokens, _ := s.guard.UseTokenStore(ctx, auth.CatalogTokens(s.store))
	stopLease, leaseLost := s.keepLease(ctx)
	defer stopLease() // after the resolver stopped, before the store closes
	if s.catalogFresh() != nil {
		// Read when the start opened the store, maybe long ago (it waited
		// for a dependency, or for the proxy id's lease to expire): too
		// old to take writes with (a drop elsewhere meanwhile).
		cctx, cancel := context.WithTimeout(ctx, catalog.SeenWithin(s.cfg.CatalogRefresh))
		s.catalogHealth(s.catalog.Refresh(cctx))
		cancel()
	}
	defer s.watchClock(ctx)()
	front.set(s.Handler())
	s.health.Clear(startComponent) // only now: the API answers
	if s.console != nil {
		cctx, stopConsole := context.WithCancel(ctx)
		sampled := make(chan struct{})
		go func() { defer close(sampled); s.console.Run(cctx) }()
		defer func() { stopConsole(); <-sampled }()
	}

	rctx, stopResolver := context.WithCancel(context.WithoutCancel(ctx))
	defer stopResolver()
	resolverErr := make(chan error, 1)
	if s.cfg.Resolver.Enabled {
		more := make(chan catalog.Table, 16)
		tables := s.catalog.Watch(more)
		go func() { resolverErr <- s.resolver.Run(rctx, tables, more) }()
	} else {
		resolverErr <- nil
	}
	var background sync.WaitGroup
	background.Go(func() { s.refreshCatalog(rctx) })
	background.Go(func() { s.watchStore(rctx) })
	background.Go(func() { s.watchReplicas(rctx) })
	background.Go(func() { s.watchRetention(rctx) })
	background.Go(func() { s.checkOffsetsRetention(rctx) })
	if refreshTokens != nil {
		background.Go(func() { refreshTokens(rctx) })
	}
	background.Go(func() { s.guard.RunJWKS(rctx) })
	if s.admission != nil {
		background.Go(func() { s.watchBacklog(rctx, s.admission) })
	}
	if err := s.configSinks(ctx); err != nil {
		s.logger.Error("sinks of the configuration could not be saved; they run once saved (restart, or `wail sink create`)", "err", err)
	}
	s.sinks.Start(rctx)
	defer func() {
		s.sinks.Close() // before the log closes (idempotent: shutdown closed it)
		stopResolver()
		// Before the log and store close, but not past the deadline: a
		// store that stopped answering (a hung disk under Pebble) holds a
		// catalog refresh for good.
		if !waitBy(&background, deadline, s.cfg.ShutdownTimeout) {
			err = errors.Join(err, fmt.Errorf("server: the catalog refresh or another background task did not stop within shutdown_timeout (%s): the store does not answer; exiting without", s.cfg.ShutdownTimeout))
		}
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}
	var lost error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("server: serve: %w", err)
	case <-s.failed: // a storage failure: stop as for SIGTERM, sooner
	case lost = <-leaseLost: // another process took the proxy id
	}
	timeout := s.cfg.ShutdownTimeout
	if s.stopping.Load() != nil {
		timeout = min(timeout, failStopTimeout)
	}
	deadline = time.Now().Add(timeout)
	err = s.shutdown(hs, stopResolver, resolverErr, deadline)
	if cause := s.stopping.Load(); cause != nil {
		err = errors.Join(fmt.Errorf("server: %w: %w", ErrFailStop, *cause), err)
	}
	return errors.Join(lost, err)
}

// waitBy waits for wg until deadline (zero: timeout from now) and
// reports whether it ended.
func waitBy(wg *sync.WaitGroup, deadline time.Time, timeout time.Duration) bool {
	if deadline.IsZero() {
		deadline = time.Now().Add(timeout)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// refreshCatalog reloads the catalog until ctx ends, so tables created
// through other processes sharing the store appear here (and get resolved).
func (s *Server) refreshCatalog(ctx context.Context) {
	t := time.NewTicker(s.cfg.CatalogRefresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Tables it read but cannot serve are on /healthz (catalog/<table>);
		// this says only when the store stops answering for the catalog,
		// once each time it starts.
		err := s.catalog.Refresh(ctx)
		unread := errors.Is(err, catalog.ErrLoad)
		if unread && !failing && ctx.Err() == nil {
			s.logger.Warn("cannot reload the table catalog; tables created elsewhere stay unknown here until it works, "+
				"and writes are refused once the last copy read is older than twice catalog_refresh plus a second", "err", err)
		}
		failing = unread
		s.catalogHealth(err)
	}
}

// catalogComponent is the health condition of a copy of the table catalog
// too old to take writes with.
const catalogComponent = "catalog"

// catalogHealth reports a copy of the catalog that takes no more writes
// (unhealthy), with the last reload's error.
func (s *Server) catalogHealth(reload error) {
	stale := s.catalogFresh()
	if stale == nil {
		s.health.Clear(catalogComponent)
		return
	}
	reason := stale.Error()
	if errors.Is(reload, catalog.ErrLoad) {
		reason += fmt.Sprintf(" (last reload: %v)", reload)
	}
	s.health.Set(catalogComponent, health.Unhealthy, reason, "check that the store is reachable (wail doctor); writes resume once the catalog is read again")
}

// closeBy closes the log and the store, waiting until deadline at most (a
// zero deadline: shutdown_timeout from now): a disk that hangs must not
// hold the process up. What they did not close recovers at the next start.
func (s *Server) closeBy(deadline time.Time) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(s.cfg.ShutdownTimeout)
	}
	done := make(chan struct{})
	go func() {
		s.close()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		s.logger.Error("the log or the store did not close within shutdown_timeout (a disk that hangs?); exiting without; they recover at the next start")
		return errors.New("server: the log or the store did not close within shutdown_timeout")
	}
}

func (s *Server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.tracing.Shutdown(ctx); err != nil {
		s.logger.Warn("the last spans could not be exported (is the OpenTelemetry collector at tracing.endpoint up?)", "err", err)
	}
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			s.logger.Error("closing the log", "err", err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.logger.Error("closing the store", "err", err)
		}
	}
}

func intentTopicOptions(cfg config.Config) intentlog.TopicOptions {
	return intentlog.TopicOptions{Retention: cfg.Log.Retention}
}
