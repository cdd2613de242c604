package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/lease"
	"github.com/wail-cdc/wail/internal/store"
)

// The proxy id lease. Versions are unique only per proxy id, so a proxy on
// a store that several processes share (the SQL stores) leases
// "proxy/<id>" there (package lease): a second proxy with a live id refuses
// to start, naming the holder; a crashed holder's id is free again after
// proxy.lease_ttl; writes stop when the lease is not renewed in time, and
// the process exits if another process took the id. A Pebble store is one
// process's (its directory lock): nothing to lease.

const leaseComponent = "proxy/lease"

func (s *Server) proxyIDName() string { return fmt.Sprintf("proxy id %d", s.cfg.ProxyID) }

// claimProxyID claims the proxy id at start (a step of start), then moves
// the clock past every intent in the log: the previous holder's last
// versions are there now.
func (s *Server) claimProxyID(ctx context.Context) error {
	st, ok := s.store.(lease.Store)
	if !s.cfg.Proxy.Enabled || !ok {
		return nil
	}
	if s.lease == nil {
		// One holder for every attempt: a claim that the store committed
		// without answering is this process's, and the next attempt
		// takes it at once instead of waiting for it to expire.
		if s.leaseHolder.Holder == "" {
			host, _ := os.Hostname()
			s.leaseHolder = store.Lease{Holder: processID(), Host: host, PID: os.Getpid()}
		}
		logged := false
		k, err := lease.Claim(ctx, st, fmt.Sprintf("proxy/%d", s.cfg.ProxyID), s.leaseHolder, lease.Options{
			TTL: s.cfg.Proxy.LeaseTTL, What: s.proxyIDName(),
			Waiting: func(held store.Lease) {
				// The holder's lease lasts its own proxy.lease_ttl, which
				// may not be this process's: say when it expires.
				why := fmt.Sprintf("%s is held by host %s, pid %d, since %s: waiting to see its lease renewed (a live holder: this process will not start) "+
					"or expire (a stopped one: this process takes the id once its lease expires, at %s by the store's clock)",
					s.proxyIDName(), held.Host, held.PID, held.Since.UTC().Format(time.RFC3339), held.Expires.UTC().Format(time.RFC3339))
				s.setStarting(why, "if that process still runs, stop it or give this one its own --proxy-id")
				if !logged {
					s.logger.Warn(why)
					logged = true
				}
			},
		})
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.lease = k
	}
	if err := s.observeLoggedVersions(ctx, s.clock); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// producerService is the ProducerService, refusing writes while the proxy
// id's lease is not valid.
func (s *Server) producerService() *api.ProducerService {
	if s.producer != nil {
		return s.producer
	}
	// The fail-stop interceptor refuses unary writes; the batches of a
	// write stream ask here.
	s.producer = api.NewProducerService(s.proxy).WithStreamLimits(s.writeStreams).WithAdmit(s.admitWrites)
	return s.producer
}

// admitWrites refuses writes while wail stops after a storage failure,
// the proxy id's lease is not valid, or the copy of the table catalog is
// too old to take writes with (catalog.Catalog.Fresh). Asked when a write
// arrives and again right before it is stamped.
func (s *Server) admitWrites() error {
	if cause := s.stopping.Load(); cause != nil {
		return fmt.Errorf("wail is stopping after a storage failure and writes nothing more; retry on another instance or after the restart (%v)", *cause)
	}
	if s.lease != nil {
		if err := s.lease.Check(); err != nil {
			return err
		}
	}
	return s.catalogFresh()
}

// catalogFresh is catalog.Catalog.Fresh on a store that several processes
// share (the SQL stores, Cassandra); a Pebble store's catalog is this
// process's alone: nobody else drops or alters its tables.
func (s *Server) catalogFresh() error {
	if s.catalog == nil || s.cfg.Store.Kind == config.StorePebble {
		return nil
	}
	return s.catalog.Fresh()
}

// holdStamped is admitWrites asked right after a write was stamped: it
// also holds the proxy id's lease until the write's intents are appended
// (lease.Keeper.Hold), so that it is released at shutdown only once the
// next holder's clock can observe them. The catalog is checked after the
// hold, as admitWrites does (TestHoldStampedChecksTheCatalog).
func (s *Server) holdStamped() (done func(), err error) {
	if cause := s.stopping.Load(); cause != nil || s.lease == nil {
		return func() {}, s.admitWrites()
	}
	if done, err = s.lease.Hold(); err != nil {
		return nil, err
	}
	if err := s.catalogFresh(); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// keepLease renews the proxy id's lease until stop is called (which
// releases it); lost gets an error if another process took the id.
func (s *Server) keepLease(ctx context.Context) (stop func(), lost <-chan error) {
	ch := make(chan error, 1)
	if s.lease == nil {
		return func() {}, ch
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.lease.Run(lctx, s.leaseHealth); err != nil {
			s.health.Set(leaseComponent, health.Unhealthy, err.Error(), "give every proxy sharing a store its own --proxy-id; this process exits")
			ch <- fmt.Errorf("server: %w", err)
		}
	}()
	return func() { cancel(); <-done }, ch
}

// leaseHealth reports renewals that fail: degraded while the lease is
// still valid, unhealthy (writes refused) once it is not. A lapse is also
// logged, once when a failed renewal finds it and once when a renewal ends
// it (with how long writes were refused): /healthz shows only the moment,
// and a process paused past its lease renews at once when it wakes, so
// only that line tells why its writes were refused meanwhile.
func (s *Server) leaseHealth() {
	err := s.lease.Renewing()
	switch {
	case err == nil:
		s.health.Clear(leaseComponent)
		if d := s.lease.Lapse(); d > 0 {
			s.leaseLapsed.Store(false)
			s.logger.Warn("the proxy id's lease is renewed after it lapsed: writes were refused meanwhile (unavailable: the lease was not renewed in time); "+
				"the store did not answer the renewals, or this process was paused or suspended past proxy.lease_ttl",
				"proxy_id", s.cfg.ProxyID, "lapsed_for", d.Round(time.Millisecond))
		}
	case s.lease.Check() == nil:
		s.health.Set(leaseComponent, health.Degraded,
			fmt.Sprintf("cannot renew the lease on %s: %v; writes stop if it is not renewed in time", s.proxyIDName(), err),
			"check that the store is reachable")
	default:
		s.health.Set(leaseComponent, health.Unhealthy,
			fmt.Sprintf("the lease on %s lapsed: writes are refused until it is renewed: %v", s.proxyIDName(), err),
			"check that the store is reachable")
		if !s.leaseLapsed.Swap(true) {
			s.logger.Warn("the proxy id's lease lapsed: writes are refused until a renewal succeeds; check that the store is reachable",
				"proxy_id", s.cfg.ProxyID, "err", err)
		}
	}
}

// processID names this process where it meets others: the proxy id lease's
// holder, consumer groups shared across processes: host, pid and a random
// part (a restarted process is another one).
func processID() string {
	host, _ := os.Hostname()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(rnd[:]))
}
