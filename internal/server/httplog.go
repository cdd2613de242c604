package server

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// net/http writes what goes wrong with a connection to its server's
// ErrorLog, by default the standard logger on stderr. Most of it is the
// client's doing and nobody's to act on: a load balancer's TCP health
// check that connects and closes ("TLS handshake error from ...: EOF",
// every few seconds for ever), a port scanner, a client that does not
// trust the certificate, an HTTP/2 client that goes away before its
// preface. Any client could fill the log with them. httpLog counts those
// (wail_api_connection_errors_total by kind) and logs at most one line a
// minute of each kind, at debug level; the rest (an accept that fails: out
// of file descriptors; a handler that panicked) goes to the log as errors.

// connErrorKinds are the prefixes of net/http's lines about a client's
// connection, and their kinds, as its sources word them
// (src/net/http/server.go, h2_bundle.go: some of the HTTP/2 server's lines
// have no "http2:" prefix). TestHTTPLogClientLines holds one line of each.
var connErrorKinds = []struct{ prefix, kind string }{
	{"http: TLS handshake error", "tls_handshake"},
	{"http2: server: error reading preface", "http2_preface"},
	{"http2: server connection error", "http2_protocol"},
	{"timeout waiting for SETTINGS frames", "http2_protocol"}, // a preface and no SETTINGS within 2s
	{"timeout waiting for PING response", "http2_protocol"},   // a client gone silent
	{"http2: received GOAWAY", "http2_protocol"},              // a client that went away saying an error
}

type httpLog struct {
	logger *slog.Logger
	errs   *prometheus.CounterVec
	now    func() time.Time

	mu     sync.Mutex
	logged map[string]time.Time // by kind: the last debug line
}

// newHTTPLog registers its metric in reg, unless nil.
func newHTTPLog(logger *slog.Logger, reg prometheus.Registerer) *httpLog {
	h := &httpLog{logger: logger, now: time.Now, logged: map[string]time.Time{},
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_api_connection_errors_total",
			Help: "Connections to the API port that failed on the client's side, by kind (tls_handshake: a client that closed or did not trust the certificate, a TCP health check; http2_preface, http2_protocol: an HTTP/2 client that broke the protocol or went away)."},
			[]string{"kind"})}
	for _, k := range connErrorKinds {
		h.errs.WithLabelValues(k.kind) // 0 from the start, for rate()
	}
	if reg != nil {
		reg.MustRegister(h.errs)
	}
	return h
}

// stdLogger is the ErrorLog of an http.Server.
func (h *httpLog) stdLogger() *log.Logger { return log.New(h, "", 0) }

// Write takes one line of net/http's.
func (h *httpLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	for _, k := range connErrorKinds {
		if !strings.HasPrefix(line, k.prefix) {
			continue
		}
		h.errs.WithLabelValues(k.kind).Inc()
		now := h.now()
		h.mu.Lock()
		quiet := now.Sub(h.logged[k.kind]) < time.Minute
		if !quiet {
			h.logged[k.kind] = now
		}
		h.mu.Unlock()
		if !quiet {
			h.logger.Debug("a client's connection failed (counted in wail_api_connection_errors_total; at most one line a minute)", "kind", k.kind, "detail", line)
		}
		return len(p), nil
	}
	h.logger.Error("HTTP server: "+line, "action", "an accept error means the process is out of file descriptors (raise ulimit -n, or lower api.max_connections); a panic is a bug: report it with this line")
	return len(p), nil
}
