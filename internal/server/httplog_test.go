package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConnectionErrorsCounted: connections that close before their TLS
// handshake (a load balancer's TCP health check, a port scanner) are
// counted in wail_api_connection_errors_total (so net/http's lines reach
// the server's ErrorLog, not stderr, where any client could fill the
// log), and logged at most once a minute at debug level.
func TestConnectionErrorsCounted(t *testing.T) {
	ca := tlstest.NewCA(t, "wail-test")
	pair := ca.Server(t, "wail-server")
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Security.TLS = config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}
	var logs lockedBuffer
	srv, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	addr := runForTest(t, srv)
	const n = 20
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	counter := srv.httpLog.errs.WithLabelValues("tls_handshake")
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(counter) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("wail_api_connection_errors_total{kind=tls_handshake} = %v after %d connections closed before their handshake; want %d",
				testutil.ToFloat64(counter), n, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Count(logs.String(), "a client's connection failed"); got != 1 {
		t.Errorf("%d log lines for %d failed handshakes; want 1 (at most one a minute):\n%s", got, n, logs.String())
	}
}

// TestHTTPLogOthersAreErrors: a line of net/http's that is not a client's
// failed connection (an accept error: out of file descriptors; a panic)
// is logged as an error saying what to do.
func TestHTTPLogOthersAreErrors(t *testing.T) {
	var logs bytes.Buffer
	h := newHTTPLog(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	h.stdLogger().Printf("http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 5ms")
	if s := logs.String(); !strings.Contains(s, "level=ERROR") || !strings.Contains(s, "too many open files") || !strings.Contains(s, "ulimit") {
		t.Errorf("an accept error logged as %q; want an error naming it and what to do", s)
	}
}

// runForTest runs srv until the test ends and returns its address.
func runForTest(t *testing.T, srv *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server shutdown: %v", err)
			}
		})
		return a
	case err := <-done:
		cancel()
		t.Fatalf("server: %v", err)
		return ""
	}
}

// TestHTTPLogClientLines: the lines net/http and its bundled HTTP/2
// server write about a client's connection (as this Go version words
// them: src/net/http/server.go, h2_bundle.go) are counted by kind, not
// logged as errors. An HTTP/2 client that sent its preface and no
// SETTINGS ("timeout waiting for SETTINGS frames", no "http2:" prefix)
// and one that went away with an error GOAWAY were logged as errors
// telling the operator to raise ulimit -n or report a bug.
func TestHTTPLogClientLines(t *testing.T) {
	for _, c := range []struct{ line, kind string }{
		{"http: TLS handshake error from 10.0.0.1:5555: EOF", "tls_handshake"},
		{"http: TLS handshake error from 10.0.0.1:5555: client sent an HTTP request to an HTTPS server", "tls_handshake"},
		{"http2: server: error reading preface from client 10.0.0.1:5555: bogus greeting \"GET / HTTP/1.1\\r\\nHost: x\"", "http2_preface"},
		{"http2: server connection error from 10.0.0.1:5555: connection error: PROTOCOL_ERROR", "http2_protocol"},
		{"timeout waiting for SETTINGS frames from 10.0.0.1:5555", "http2_protocol"},
		{"timeout waiting for PING response", "http2_protocol"},
		{"http2: received GOAWAY [FrameHeader GOAWAY len=8], starting graceful shutdown", "http2_protocol"},
	} {
		var logs bytes.Buffer
		h := newHTTPLog(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), prometheus.NewRegistry())
		h.stdLogger().Printf("%s", c.line)
		if got := testutil.ToFloat64(h.errs.WithLabelValues(c.kind)); got != 1 {
			t.Errorf("%q: wail_api_connection_errors_total{kind=%s} = %v; want 1", c.line, c.kind, got)
		}
		if s := logs.String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("%q logged as an error: %s", c.line, s)
		}
	}
}

// TestHTTP2SettingsTimeoutCounted: an HTTP/2 client (h2c) that sends its
// preface and then nothing is cut off by net/http after 2s with a line of
// its own wording ("timeout waiting for SETTINGS frames from ..."): it is
// counted as http2_protocol, not logged as an error (any client could
// fill the log with it, each line telling to raise ulimit -n).
func TestHTTP2SettingsTimeoutCounted(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	var logs lockedBuffer
	srv, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	addr := runForTest(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, c) // until the server closes it
	counter := srv.httpLog.errs.WithLabelValues("http2_protocol")
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(counter) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("wail_api_connection_errors_total{kind=http2_protocol} = %v after an h2c preface without SETTINGS; want 1; log:\n%s",
				testutil.ToFloat64(counter), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := logs.String(); strings.Contains(s, "level=ERROR msg=\"HTTP server") {
		t.Errorf("a client's missing SETTINGS logged as an error:\n%s", s)
	}
}
