package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// Connections (api.max_connections): each open connection costs a file
// descriptor, a goroutine and buffers, and one that never sends holds
// them until api.read_header_timeout; without a cap, clients that open
// connections faster than that (slowloris) exhaust the process's file
// descriptors, and the store, the log and Kafka fail with them.
//
// Past the cap a connection is still accepted, to tell its client why:
// it is a refused connection, whose every deadline is at most
// refuseWindow after its accept, on which each request gets
// resource_exhausted (HTTP 503) naming the setting, with Connection:
// close, but /healthz and /metrics, which a probe or scraper must reach
// even then. Past maxRefusing refused connections at once, a new
// connection is closed without a word.

const (
	// refuseWindow is how long a refused connection stays open: enough
	// for its client to send a request and read the answer.
	refuseWindow = 2 * time.Second
	// maxRefusing bounds the refused connections open at once.
	maxRefusing = 64
)

// connLimit counts the connections of a listener.
type connLimit struct {
	max       int
	perClient int
	mu        sync.Mutex
	open      int            // counted connections open
	byHost    map[string]int // counted connections open per client address
	refusing  int            // refused connections open
	opened    prometheus.Gauge
	refused   *prometheus.CounterVec
	errs      *connect.ErrorWriter
}

// Values of the limit label of wail_api_connections_refused_total.
const (
	limitTotal     = "total"
	limitPerClient = "per_client"
)

// newConnLimit registers its metrics in reg, unless nil. perClient above
// max counts as max.
func newConnLimit(reg prometheus.Registerer, max, perClient int) *connLimit {
	l := &connLimit{max: max, perClient: min(perClient, max), byHost: map[string]int{}, errs: connect.NewErrorWriter(),
		opened: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wail_api_connections",
			Help: "Connections open on the API port, up to api.max_connections."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_api_connections_refused_total",
			Help: "Connections to the API port refused because a limit was reached: total (api.max_connections) or per_client (api.max_connections_per_client)."},
			[]string{"limit"}),
	}
	if reg != nil {
		reg.MustRegister(l.opened, l.refused)
	}
	return l
}

// listener counts ln's connections against the limit.
func (l *connLimit) listener(ln net.Listener) net.Listener { return &limitListener{Listener: ln, l: l} }

type limitListener struct {
	net.Listener
	l *connLimit
}

func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l := ln.l
		host := hostOf(c.RemoteAddr())
		l.mu.Lock()
		limit := limitTotal
		if l.open < l.max {
			if l.byHost[host] < l.perClient {
				l.open++
				l.byHost[host]++
				l.opened.Set(float64(l.open))
				l.mu.Unlock()
				return &countedConn{Conn: c, l: l, host: host}, nil
			}
			limit = limitPerClient
		}
		l.refused.WithLabelValues(limit).Inc()
		if l.refusing < maxRefusing {
			l.refusing++
			l.mu.Unlock()
			rc := &refusedConn{countedConn: countedConn{Conn: c, l: l, host: host, refused: true},
				until: time.Now().Add(refuseWindow), limit: limit}
			_ = rc.SetDeadline(time.Time{})
			return rc, nil
		}
		l.mu.Unlock()
		_ = c.Close()
	}
}

// hostOf is the client of a connection's remote address, as
// api.max_connections_per_client counts them: an IPv4 address, or an
// IPv6 address's /64 (one host or one subscriber line is usually given a
// whole /64: counted by address, one host could cycle through its 2^64
// addresses and take every place).
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip4 := ta.IP.To4(); ip4 != nil || ta.IP.IsLoopback() || len(ta.IP) != net.IPv6len {
			return ta.IP.String()
		}
		return (&net.IPNet{IP: ta.IP.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// countedConn gives its place back when closed.
type countedConn struct {
	net.Conn
	l       *connLimit
	host    string
	refused bool
	closed  atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.mu.Lock()
		if c.refused {
			c.l.refusing--
		} else {
			c.l.open--
			if c.l.byHost[c.host]--; c.l.byHost[c.host] == 0 {
				delete(c.l.byHost, c.host)
			}
			c.l.opened.Set(float64(c.l.open))
		}
		c.l.mu.Unlock()
	}
	return c.Conn.Close()
}

// CloseWrite lets the HTTP/1.1 server half-close the connection, as it
// does a *net.TCPConn's.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// refusedConn is a connection past the limit: no deadline the server sets
// on it is later than until.
type refusedConn struct {
	countedConn
	until time.Time
	limit string // limitTotal or limitPerClient
}

func (c *refusedConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.until) {
		return c.until
	}
	return t
}

func (c *refusedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *refusedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *refusedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

type refusedKey struct{}

// connContext is http.Server.ConnContext: it marks the requests of a
// refused connection with it.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = nc.NetConn()
	}
	if rc, ok := c.(*refusedConn); ok {
		return context.WithValue(ctx, refusedKey{}, rc)
	}
	return ctx
}

// wrap answers the requests of refused connections: resource_exhausted
// with a RetryInfo detail to an RPC, the registry's error body on the
// schema registry, 503 to the rest, but /healthz and /metrics, which are
// served. Every answer closes the connection.
func (l *connLimit) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, _ := r.Context().Value(refusedKey{}).(*refusedConn)
		if rc == nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close") // HTTP/2: a GOAWAY
		if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		msg := fmt.Sprintf("%d connections are open, the most this server takes (api.max_connections); retry later, "+
			"and reuse connections (HTTP keep-alive; an HTTP/2 or gRPC client runs many calls on one)", l.max)
		if rc.limit == limitPerClient {
			msg = fmt.Sprintf("%d connections from %s are open, the most this server takes from one client address "+
				"(api.max_connections_per_client); reuse connections (HTTP keep-alive; an HTTP/2 or gRPC client runs many calls on one), "+
				"or, behind a load balancer or proxy whose address its clients share, raise the setting", l.perClient, rc.host)
		}
		w.Header().Set("Retry-After", "1")
		switch {
		case isRPC(r.URL.Path):
			ce := connect.NewError(connect.CodeResourceExhausted, errors.New(msg))
			if d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}); err == nil {
				ce.AddDetail(d)
			}
			_ = l.errs.Write(w, r, ce)
		case strings.HasPrefix(r.URL.Path, config.SchemaRegistryPath+"/"):
			schemaregistry.WriteError(w, &schemaregistry.Error{Status: http.StatusServiceUnavailable,
				Code: http.StatusServiceUnavailable, Message: msg})
		default:
			http.Error(w, msg, http.StatusServiceUnavailable)
		}
	})
}
