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

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// inflight tracks the requests being served, so that a shutdown that
// cannot finish them in time says which it waited for, and can cut the
// streams that would otherwise run until the client leaves.
type inflight struct {
	mu   sync.Mutex
	reqs map[*http.Request]request
	cut  bool // cutStreams ran: streams that start now are cut at once
}

type request struct {
	since time.Time
	cut   func() // a stream's: ends it (nil for other requests)
}

// streamPaths are the requests that stream until the client leaves: event
// streams (Subscribe, a group member's Consume) and the console's tail.
// Not WriteStream: shutdown answers what it runs
// (api.ProducerService.Close). Not the EventService's other calls: an
// Ack commits a member's acknowledgements durably, a ResetGroup a
// group's positions; cut, they were answered as failed although they may
// have been committed.
var streamPaths = []string{wailv1connect.EventServiceSubscribeProcedure, wailv1connect.EventServiceConsumeProcedure,
	"/console/api/tail"}

func isStream(path string) bool {
	for _, p := range streamPaths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// streamCutGrace is how long a stream that shutdown cuts may still write
// (its last message, the end of the stream) before its writes fail: a
// client that stopped reading cannot hold up the shutdown.
const streamCutGrace = 100 * time.Millisecond

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := request{since: time.Now()}
		if isStream(r.URL.Path) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			r = r.WithContext(ctx)
			rc := http.NewResponseController(w)
			req.cut = func() {
				// An event stream that shutdown ended (EventService.Close)
				// writes its end within the grace; then its context ends
				// (a console tail) and writes fail (a client that stopped
				// reading).
				_ = rc.SetWriteDeadline(time.Now().Add(streamCutGrace))
				time.AfterFunc(streamCutGrace, cancel)
			}
		}
		f.mu.Lock()
		if f.reqs == nil {
			f.reqs = map[*http.Request]request{}
		}
		f.reqs[r] = req
		cut := f.cut
		f.mu.Unlock()
		if cut && req.cut != nil {
			req.cut()
		}
		defer func() {
			f.mu.Lock()
			delete(f.reqs, r)
			f.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// cutStreams ends the streams being served, and those that start later,
// within streamCutGrace: then their contexts end and their writes fail.
func (f *inflight) cutStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	for _, req := range f.reqs {
		if req.cut != nil {
			req.cut()
		}
	}
}

// describe names the requests in flight, longest running first.
func (f *inflight) describe() string {
	f.mu.Lock()
	type req struct {
		what  string
		since time.Duration
	}
	var rs []req
	for r, in := range f.reqs {
		rs = append(rs, req{r.Method + " " + r.URL.Path + " from " + r.RemoteAddr, time.Since(in.since)})
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
	// Streams run until the client leaves (a console tail), or block on a
	// client that stopped reading: cut them, the subscriber resumes from
	// its cursor.
	s.inflight.cutStreams()
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
