package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/store"
)

// Starting while dependencies are down. A process on Kafka or a SQL store
// does not exit when the brokers or the database do not answer at start:
// it listens at once (/healthz: unhealthy, the component "start" saying
// what it waits for; the API: Unavailable with the same words), retries
// with backoff, and serves once they answer, as Kafka clients do. Errors
// that waiting cannot fix (a corrupt or locked data dir, a YAML table that
// conflicts with the saved one) end the start at once. start_timeout
// bounds the wait (0: wait for ever).

const (
	startComponent = "start"
	// startAttempt bounds one attempt, so a broker that does not answer at
	// all is reported, not waited on silently.
	startAttempt   = 30 * time.Second
	startBackoff   = 500 * time.Millisecond
	startBackoffTo = 15 * time.Second
	startLogEvery  = time.Minute
)

// gate is the server's handler: the starting one, then the API.
type gate struct{ h atomic.Pointer[http.Handler] }

func (g *gate) set(h http.Handler)                               { g.h.Store(&h) }
func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*g.h.Load()).ServeHTTP(w, r) }

// startingHandler answers while the server starts: /healthz and /metrics,
// and Unavailable on every RPC, saying what the server waits for.
func (s *Server) startingHandler() http.Handler {
	mux := api.NewMux()
	api.Mount(mux, api.Unimplemented(), budgetOptions(&s.cfg),
		connect.WithRequestGate(func(ctx context.Context, _ connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
			return ctx, connect.NewError(connect.CodeUnavailable, errors.New(s.startingReason()))
		}))
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	// As once it serves: what the start waits for names the store's or
	// the brokers' address and its error.
	mux.Handle("/healthz", s.health.HandlerFor(s.guard.HealthDetail))
	return s.guarded(mux)
}

// startingAPI is what the start says once the log and the store are open
// (and the proxy id claimed): the API's tokens and handler are set up.
const startingAPI = "starting the API"

// firstStartStep says what the start does first.
func (s *Server) firstStartStep() string {
	if s.opened {
		return startingAPI
	}
	return "opening the log and the store"
}

func (s *Server) startingReason() string {
	if r := s.starting.Load(); r != nil {
		return *r
	}
	return "wail is starting"
}

// start opens the log, the store and what lives on them, and claims the
// proxy id (lease.go), waiting while a remote dependency does not answer.
func (s *Server) start(ctx context.Context) error {
	w := &waiter{s: s, begin: time.Now(), backoff: startBackoff}
	var err error
	if !s.opened { // else New opened it (nothing remote)
		s.setStarting(s.firstStartStep(), "wait; if it lasts, see the process's log")
		err = w.until(ctx, s.waitingFor, func(ctx context.Context) error {
			actx, cancel := context.WithTimeout(ctx, startAttempt)
			defer cancel()
			return s.open(actx)
		})
	}
	if err == nil {
		err = w.until(ctx, s.waitingFor, s.claimProxyID)
	}
	if err != nil {
		return err
	}
	if w.attempts > 0 {
		s.logger.Info("the dependencies answer: serving", "waited", time.Since(w.begin).Round(time.Millisecond))
	}
	return nil
}

// waiter runs the steps of a start again while they fail with errors
// that waiting fixes, with backoff, saying what it waits for.
type waiter struct {
	s        *Server
	begin    time.Time
	backoff  time.Duration
	attempts int
	lastLog  time.Time
	lastWhat string
}

func (w *waiter) until(ctx context.Context, what func() string, step func(context.Context) error) error {
	s := w.s
	for {
		err := step(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !waitable(err) {
			return err
		}
		w.attempts++
		dep := what()
		if t := s.cfg.StartTimeout; t > 0 && time.Since(w.begin)+w.backoff > t {
			return fmt.Errorf("server: gave up after %s (start_timeout) waiting for %s: %w", time.Since(w.begin).Round(time.Second), dep, err)
		}
		s.setStarting(fmt.Sprintf("waiting for %s (attempt %d, for %s): %v", dep, w.attempts, time.Since(w.begin).Round(time.Second), err),
			waitAction(s.cfg))
		if dep != w.lastWhat || time.Since(w.lastLog) >= startLogEvery {
			s.logger.Warn("waiting for a dependency before serving; /healthz says unhealthy and the API unavailable meanwhile",
				"waiting_for", dep, "err", err, "next_attempt_in", w.backoff, "start_timeout", s.cfg.StartTimeout)
			w.lastLog, w.lastWhat = time.Now(), dep
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.backoff):
		}
		w.backoff = min(2*w.backoff, startBackoffTo)
	}
}

// remote reports whether the configuration names a dependency the start
// may have to wait for: Kafka, a SQL store.
func (s *Server) remote() bool {
	return s.cfg.Log.Kind == config.LogKafka || s.cfg.Store.Kind != config.StorePebble
}

// setStarting says what the start waits for, on /healthz and in the API's
// Unavailable answers.
func (s *Server) setStarting(waiting, action string) {
	reason := "wail is starting: " + waiting
	s.starting.Store(&reason)
	s.health.Set(startComponent, health.Unhealthy, reason, action)
}

// waitingFor names the dependency the start waits for.
func (s *Server) waitingFor() string {
	var deps []string
	if s.cfg.Log.Kind == config.LogKafka {
		deps = append(deps, fmt.Sprintf("the Kafka brokers %s (log.kafka.brokers)", strings.Join(s.cfg.Log.Kafka.Brokers, ",")))
	}
	switch s.cfg.Store.Kind {
	case config.StorePebble:
	case config.StoreCassandra:
		deps = append(deps, fmt.Sprintf("the cassandra store %s (store.cassandra.hosts)", strings.Join(s.cfg.Store.Cassandra.Hosts, ",")))
	default:
		deps = append(deps, fmt.Sprintf("the %s store (store.dsn)", s.cfg.Store.Kind))
	}
	switch {
	case s.log == nil && s.cfg.Log.Kind == config.LogKafka:
		return deps[0]
	case s.store == nil:
		return deps[len(deps)-1]
	}
	return strings.Join(deps, " and ")
}

func waitAction(cfg config.Config) string {
	a := "check that the dependency is up and reachable from this host; wail serves once it answers"
	if cfg.StartTimeout > 0 {
		return a + fmt.Sprintf(" (it gives up after start_timeout, %s)", cfg.StartTimeout)
	}
	return a
}

// waitable reports an error that says a dependency cannot be reached yet:
// a network error, a timeout, a store that says it is unavailable, a
// retriable Kafka error. Waiting fixes those; it fixes nothing else.
func waitable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var ke *kerr.Error
	return errors.Is(err, store.ErrUnavailable) || errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		(errors.As(err, &ke) && ke.Retriable)
}
