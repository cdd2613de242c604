package server

import (
	"bytes"
	"context"
	"log"
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
// counted in wail_api_connection_errors_total, and logged at most once a
// minute at debug level, not once each on stderr (where net/http wrote
// them: any client could fill the log).
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
	var stderr lockedBuffer
	prev := log.Writer()
	log.SetOutput(&stderr) // net/http's default ErrorLog
	defer log.SetOutput(prev)
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
	if strings.Contains(stderr.String(), "TLS handshake error") {
		t.Errorf("the handshake errors went to stderr:\n%s", stderr.String())
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
