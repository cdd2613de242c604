// Package server assembles a wail process from its configuration: the
// embedded log (intent log and event bus), the store, the catalog, the
// proxy, the resolver and the HTTP server that carries the API, and runs
// them until shutdown.
//
// Shutdown order: stop accepting requests and finish the ones in flight
// (http.Server.Shutdown; event streams are ended first so they do not hold
// it up), then stop the resolver (it drains reads and publishes in flight
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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store"
)

const (
	// maxRequestBytes bounds one decoded request (a Write batch).
	maxRequestBytes = 64 << 20
	// minCompressBytes: smaller messages go uncompressed.
	minCompressBytes = 4 << 10
)

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
	registry *prometheus.Registry
	// health is what /healthz reports; components raise conditions on it.
	health *health.Registry

	seams seams
	// stopping is set (to the cause) once a storage failure makes the
	// process stop (failstop.go); failed then tells Run.
	stopping atomic.Pointer[error]
	failed   chan error
}

// New opens everything the configuration names; it does not listen yet.
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
	if err := s.open(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open() error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("server: data dir: %w", err)
	}
	var err error
	logSeams := s.seams
	if logSeams.onLogHealth == nil {
		logSeams.onLogHealth = s.logHealth
	}
	s.log, err = openLog(context.Background(), cfg, s.logger, logSeams)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.store, err = openStore(context.Background(), cfg, s.logger, s.seams)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.bus = eventbus.New(s.log)
	defaults, err := tableDef(cfg.Defaults)
	if err != nil {
		return fmt.Errorf("server: table_defaults: %w", err)
	}
	ctx := context.Background()
	s.catalog, err = catalog.Open(ctx, s.store, s.provision, defaults)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	// The catalog lives in the store, which other proxies may share: make
	// sure this process's log has the topics of every table it knows.
	for _, t := range s.catalog.List() {
		if err := s.provision(ctx, t); err != nil {
			return fmt.Errorf("server: topics of table %s: %w", t.Name, err)
		}
	}
	for _, t := range cfg.Tables {
		def, err := tableDef(t)
		if err != nil {
			return fmt.Errorf("server: table %s: %w", t.Name, err)
		}
		if _, _, err := s.catalog.Create(ctx, def); err != nil {
			return fmt.Errorf("server: table %s: %w", t.Name, err)
		}
	}
	clock, err := hlc.New(cfg.ProxyID, nil)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := s.observeLoggedVersions(ctx, clock); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	limits := proxy.Limits{
		MaxKeyBytes: cfg.Limits.MaxKeyBytes, MaxValueBytes: cfg.Limits.MaxValueBytes, MaxBatch: cfg.Limits.MaxBatchMutations,
	}
	if bus, ok := s.log.(proxy.RecordLimiter); ok {
		limits.Bus = bus // values whose events would not fit the bus are refused
	}
	s.proxy = proxy.New(s.log, s.store, s.catalog, clock, limits, proxy.NewMetrics(s.registry))
	rc := cfg.Resolver
	appendLimits, _ := s.log.(resolver.AppendLimiter) // both logs tell; else the resolver's default
	s.resolver = resolver.New(s.log, s.store, s.bus, resolver.Config{
		Group: rc.Group, Concurrency: rc.Concurrency, FirstReadDelay: rc.FirstReadDelay, BackoffMin: rc.BackoffMin, BackoffMax: rc.BackoffMax,
		Horizon: rc.DedupeHorizon, CommitInterval: rc.CommitInterval, MaxUnresolved: rc.MaxUnresolved,
		RetryMin: rc.RetryBackoffMin, RetryMax: rc.RetryBackoffMax, StallAfter: rc.StallAfter,
		InstanceID: cfg.ResolverInstance(), Health: s.health, Limits: appendLimits,
		Logger: s.logger, Metrics: resolver.NewMetrics(s.registry), Join: GroupJoin(s.log, rc.Group, cfg.ResolverInstance(), rc.TransactionProducers),
	})
	s.events = eventbus.NewService(s.bus, s.partitions)
	return nil
}

// observeLoggedVersions moves the clock past the newest intent of every
// partition, so versions keep increasing across a restart even if the wall
// clock went back while the process was down.
func (s *Server) observeLoggedVersions(ctx context.Context, clock *hlc.Clock) error {
	for _, t := range s.catalog.List() {
		topic := intent.Topic(t.Name)
		for p := int32(0); p < t.Partitions; p++ {
			start, end, err := s.log.Bounds(ctx, topic, p)
			if err != nil {
				return fmt.Errorf("bounds of %s/%d: %w", topic, p, err)
			}
			if end == start {
				continue
			}
			r, err := s.log.NewReader(topic, p, end-1)
			if err != nil {
				return fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			recs, err := r.Next(ctx)
			r.Close()
			if err != nil {
				return fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			for _, rec := range recs {
				if in, err := intent.UnmarshalIntent(rec.Value); err == nil {
					clock.Observe(in.Version)
				}
			}
		}
	}
	return nil
}

// provision creates a table's intent, event and dead-letter topics.
func (s *Server) provision(ctx context.Context, t catalog.Table) error {
	err := s.log.CreateTopic(ctx, intent.Topic(t.Name), t.Partitions, intentTopicOptions(s.cfg))
	if err != nil {
		return err
	}
	if err := s.bus.CreateTable(ctx, t.Name, t.Partitions, s.cfg.Log.EventRetention); err != nil {
		return err
	}
	// Never compacted: a key can be dead-lettered more than once.
	if err := s.log.CreateTopic(ctx, dlq.Topic(t.Name), dlq.Partitions, intentlog.TopicOptions{Retention: s.cfg.Log.DLQRetention}); err != nil {
		return fmt.Errorf("dead-letter topic of %s: %w", t.Name, err)
	}
	return nil
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

func tableDef(t config.Table) (catalog.Table, error) {
	mode, err := catalog.ParseFailureMode(t.FailureMode)
	if err != nil {
		return catalog.Table{}, err
	}
	return catalog.Table{Name: t.Name, FailureMode: mode, VisibilityWindow: t.VisibilityWindow, Partitions: t.Partitions,
		MaxAttempts: t.MaxAttempts, MaxRetryTime: t.MaxRetryTime}, nil
}

// Handler returns the HTTP handler of the API, /metrics and /healthz (see
// package health: 200 when ok or degraded, 503 when unhealthy).
func (s *Server) Handler() http.Handler {
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(maxRequestBytes),
		connect.WithRecover(s.recovered),
		// Compressing small answers and events costs more CPU than it saves.
		connect.WithCompressMinBytes(minCompressBytes),
	}
	mux := http.NewServeMux()
	if s.cfg.Proxy.Enabled {
		popts := append(slices.Clip(opts), connect.WithInterceptors(s.refuseWhenStopping()))
		mux.Handle(wailv1connect.NewProducerServiceHandler(proxy.NewService(s.proxy), popts...))
	}
	mux.Handle(wailv1connect.NewAdminServiceHandler(&admin{s: s}, opts...))
	mux.Handle(wailv1connect.NewEventServiceHandler(s.events, opts...))
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", s.health.Handler())
	return mux
}

func (s *Server) recovered(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
	s.logger.Error("panic in a request handler; the request failed, the server goes on", "procedure", spec.Procedure, "panic", p)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("internal error"))
}

// Run listens on cfg.Listen, calls ready with the bound address, and serves
// until ctx ends; then it stops accepting writes, finishes in-flight ones,
// drains the resolver, commits and closes. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context, ready func(addr string)) (err error) {
	// Set when shutdown starts: draining and closing end by then.
	var deadline time.Time
	defer func() { err = errors.Join(err, s.closeBy(deadline)) }()
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	// HTTP/1.1 and unencrypted HTTP/2 (h2c, for gRPC clients) on one port.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: s.Handler(), Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

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
	defer func() {
		stopResolver()
		background.Wait() // before the log and store close
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("server: serve: %w", err)
	case <-s.failed: // a storage failure: stop as for SIGTERM, sooner
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
	return err
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
		err := s.catalog.Refresh(ctx)
		if err != nil && !failing && ctx.Err() == nil {
			s.logger.Warn("cannot reload the table catalog; tables created elsewhere stay unknown here until it works", "err", err)
		}
		failing = err != nil
	}
}

// shutdown stops serving and drains the resolver; it leaves a tenth of the
// time until deadline for closing the log and the store.
func (s *Server) shutdown(hs *http.Server, stopResolver func(), resolverErr <-chan error, deadline time.Time) error {
	sctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-time.Until(deadline)/10))
	defer cancel()
	s.events.Close() // end event streams so they do not hold up Shutdown
	var errs []error
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("server: stop serving: %w", err))
	}
	stopResolver()
	select {
	case err := <-resolverErr:
		if err != nil {
			errs = append(errs, fmt.Errorf("server: resolver: %w", err))
		}
	case <-sctx.Done():
		errs = append(errs, errors.New("server: resolver did not drain within shutdown_timeout"))
	}
	return errors.Join(errs...)
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
