package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// inflight tracks the requests being served, so that a shutdown that
// cannot finish them in time says which it waited for.
type inflight struct {
	mu   sync.Mutex
	reqs map[*http.Request]time.Time
}

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.reqs == nil {
			f.reqs = map[*http.Request]time.Time{}
		}
		f.reqs[r] = time.Now()
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			delete(f.reqs, r)
			f.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// describe names the requests in flight, longest running first.
func (f *inflight) describe() string {
	f.mu.Lock()
	type req struct {
		what  string
		since time.Duration
	}
	var rs []req
	for r, at := range f.reqs {
		rs = append(rs, req{r.Method + " " + r.URL.Path + " from " + r.RemoteAddr, time.Since(at)})
	}
	f.mu.Unlock()
	if len(rs) == 0 {
		return "no request in flight (connections that did not close)"
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].since > rs[j].since })
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s (for %s)", r.what, r.since.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d requests in flight: %s", len(rs), strings.Join(parts, ", "))
}

// fresh tracks the connections on which no request was read yet
// (http.StateNew). http.Server.Shutdown counts them as busy for up to 5s;
// a client transport may hold such a connection unused for as long as it
// likes (a dial that lost the race to an idle connection), so shutdown
// closes them: nothing was read from them, so nothing is cut.
type fresh struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
}

// track is http.Server.ConnState.
func (f *fresh) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case st == http.StateNew && f.closing:
		_ = c.Close()
	case st == http.StateNew:
		if f.conns == nil {
			f.conns = map[net.Conn]struct{}{}
		}
		f.conns[c] = struct{}{}
	default:
		delete(f.conns, c)
	}
}

// closeAll closes the fresh connections, and those that come later.
func (f *fresh) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing = true
	for c := range f.conns {
		_ = c.Close()
	}
	clear(f.conns)
}

// shutdown stops serving, then the resolver, by deadline less a tenth of
// the time left (for closing the log and the store, see closeBy): the HTTP
// server gets half of it to finish the requests in flight (then the rest
// are cut), the resolver the rest to drain and commit. An error says what
// did not finish.
func (s *Server) shutdown(hs *http.Server, stopResolver func(), resolverErr <-chan error, deadline time.Time) error {
	start := time.Now()
	budget := time.Until(deadline) * 9 / 10
	// The metrics port (security.metrics_listen) answers until the end:
	// its /healthz must not say 200 while writes are refused.
	s.health.SetStopping("wail is shutting down",
		"wait: the process exits once the writes in flight finish and the resolver drained (shutdown_timeout)")
	if s.testHookShutdown != nil {
		s.testHookShutdown()
	}
	// Both leave their shared groups' entries, each within a quarter of
	// the group lease when the store does not answer: at once.
	var closing sync.WaitGroup
	closing.Go(s.sinks.Close) // a request in flight is cut: its batch is delivered again at the next start
	closing.Go(func() {
		s.eventService.Close() // end event streams so they do not hold up Shutdown
		s.events.Close()
	})
	closing.Wait()
	if s.producer != nil {
		s.producer.Close() // write streams answer what they run and end
	}
	s.fresh.closeAll()
	var errs []error
	hctx, cancel := context.WithDeadline(context.Background(), start.Add(budget/2))
	defer cancel()
	if err := hs.Shutdown(hctx); err != nil {
		errs = append(errs, fmt.Errorf("server: stop serving: %w after %s; cut: %s",
			err, time.Since(start).Round(time.Millisecond), s.inflight.describe()))
		_ = hs.Close()
	}
	stopResolver()
	rctx, cancel := context.WithDeadline(context.Background(), start.Add(budget))
	defer cancel()
	select {
	case err := <-resolverErr:
		if err != nil {
			errs = append(errs, fmt.Errorf("server: resolver: %w", err))
		}
	case <-rctx.Done():
		errs = append(errs, fmt.Errorf("server: the resolver did not stop within shutdown_timeout (%s): partitions still draining: %v",
			s.cfg.ShutdownTimeout, s.resolver.Running()))
	}
	return errors.Join(errs...)
}
