package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestTLSRotation: the server's certificate and key files are replaced
// while clients write without pause: every write succeeds, new connections
// get the new certificate without a restart; a replacement that does not
// load (a key of another certificate) keeps the last good one and reports
// degraded until it is fixed.
func TestTLSRotation(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "wail-test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := ca.Server(t, "server-1")
	first.CopyTo(t, certFile, keyFile)
	url := servertest.Start(t, func(c *config.Config) {
		c.Security.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
		c.Security.ReloadInterval = 20 * time.Millisecond
	})
	addr := strings.TrimPrefix(url, "https://")
	c, err := client.Dial(client.Options{Addr: url, CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatal(err)
	}

	// Writers on the kept connections, and one that opens a new
	// connection for every write, all through the swaps.
	stop := make(chan struct{})
	var writes, failures atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	fresh, err := client.Dial(client.Options{Addr: url, CAFile: ca.File, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{c, c, fresh} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := cl.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
				writes.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
				if cl == fresh {
					cl.HTTP.CloseIdleConnections()
				}
			}
		})
	}
	served := func() string { return servedCert(t, addr, ca) }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := served(); got != "server-1" {
		t.Fatalf("serves %q, want server-1", got)
	}
	if got := expiry(t, c); got != first.Cert.NotAfter.Unix() {
		t.Fatalf("wail_tls_certificate_expiry_timestamp_seconds %d, want server-1's %d", got, first.Cert.NotAfter.Unix())
	}
	second := ca.ServerUntil(t, "server-2", time.Now().Add(48*time.Hour))
	second.CopyTo(t, certFile, keyFile)
	waitFor("server-2's certificate", func() bool { return served() == "server-2" })
	if got := expiry(t, c); got != second.Cert.NotAfter.Unix() {
		t.Fatalf("wail_tls_certificate_expiry_timestamp_seconds %d, want server-2's %d", got, second.Cert.NotAfter.Unix())
	}

	// A key that is not the certificate's: the last good pair stays.
	third := ca.Server(t, "server-3")
	tlstest.Pair{CertFile: third.CertFile, KeyFile: first.KeyFile}.CopyTo(t, certFile, keyFile)
	waitFor("a degraded tls condition", func() bool { return tlsState(t, c) == health.Degraded })
	if got := served(); got != "server-2" {
		t.Fatalf("after a bad swap, serves %q, want server-2 still", got)
	}
	third.CopyTo(t, certFile, keyFile)
	waitFor("server-3's certificate", func() bool { return served() == "server-3" })
	waitFor("the tls condition cleared", func() bool { return tlsState(t, c) == health.OK })
	close(stop)
	wg.Wait()
	if failures.Load() > 0 || writes.Load() < 10 {
		t.Fatalf("%d of %d writes failed through the rotation; first: %v", failures.Load(), writes.Load(), *firstErr.Load())
	}
	t.Logf("%d writes through three swaps, none failed", writes.Load())
}

// servedCert returns the common name of the certificate the server at addr
// presents to a new connection.
func servedCert(t *testing.T, addr string, ca *tlstest.CA) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// expiry is wail_tls_certificate_expiry_timestamp_seconds.
func expiry(t *testing.T, c *client.Client) int64 {
	t.Helper()
	resp, err := c.HTTP.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wail_tls_certificate_expiry_timestamp_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(f)
		}
	}
	t.Fatal("no wail_tls_certificate_expiry_timestamp_seconds in /metrics")
	return 0
}

// tlsState is the state of the "tls" condition on /healthz (OK if none).
func tlsState(t *testing.T, c *client.Client) health.State {
	t.Helper()
	resp, err := c.HTTP.Get(c.URL + "/healthz?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep health.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	for _, cond := range rep.Conditions {
		if cond.Component == "tls" {
			return cond.State
		}
	}
	return health.OK
}

// TestExposure: an API other hosts can reach needs TLS and auth, or
// --insecure; loopback runs open as before.
func TestExposure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen   string
		tls      bool
		auth     bool
		insecure bool
		refusal  string // "" when it starts
	}{
		{listen: "127.0.0.1:0"},
		{listen: "localhost:0"},
		{listen: "0.0.0.0:0", refusal: "without TLS and authentication"},
		{listen: ":0", refusal: "without TLS and authentication"},
		{listen: "0.0.0.0:0", tls: true, refusal: "without authentication"},
		{listen: "0.0.0.0:0", auth: true, refusal: "without TLS"},
		{listen: "0.0.0.0:0", tls: true, auth: true},
		{listen: "0.0.0.0:0", insecure: true},
	} {
		cfg := config.Default()
		cfg.Listen = tc.listen
		cfg.Security.Auth.Enabled, cfg.Security.Insecure = tc.auth, tc.insecure
		if tc.tls {
			cfg.Security.TLS = config.TLS{CertFile: "c.pem", KeyFile: "k.pem"}
		}
		err := cfg.CheckExposure()
		switch {
		case tc.refusal == "" && err != nil:
			t.Errorf("%+v: %v, want it to start", tc, err)
		case tc.refusal != "" && (err == nil || !strings.Contains(err.Error(), tc.refusal) || !strings.Contains(err.Error(), "--insecure")):
			t.Errorf("%+v: %v, want a refusal saying %q and naming --insecure", tc, err, tc.refusal)
		}
	}
	// And the server says so at start, before it opens anything.
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "0.0.0.0:0"
	if _, err := server.New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "refusing to serve the API on 0.0.0.0:0") {
		t.Fatalf("server.New on 0.0.0.0 without TLS and auth: %v", err)
	}
}

// TestDoctorSecurity: doctor checks the TLS files (and warns before they
// expire), the tokens file, and an API that would be refused at start.
func TestDoctorSecurity(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "wail-test")
	soon := ca.ServerUntil(t, "soon", time.Now().Add(72*time.Hour))
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		want   []string
		fails  bool
	}{
		{"tls and auth", func(c *config.Config) {
			c.Security.TLS = config.TLS{CertFile: soon.CertFile, KeyFile: soon.KeyFile, ClientCAFile: ca.File}
			c.Security.Auth.Enabled = true
		}, []string{"tls          ok (certificate CN=soon, expires in 72h", "WARN: renew it soon",
			"auth         ok (tokens file ", "0 active, 0 revoked", "WARN: no token and no grant"}, false},
		{"a key of another certificate", func(c *config.Config) {
			c.Security.TLS = config.TLS{CertFile: soon.CertFile, KeyFile: ca.Server(t, "other").KeyFile}
		}, []string{"tls          FAIL: certificate "}, true},
		{"exposed", func(c *config.Config) { c.Listen = "0.0.0.0:7070" },
			[]string{"security     FAIL: refusing to serve the API on 0.0.0.0:7070"}, true},
		{"a broken tokens file", func(c *config.Config) {
			c.Security.Auth = config.Auth{Enabled: true, TokensFile: ca.File} // PEM, not JSON
		}, []string{"auth         FAIL: tokens file: "}, true},
	} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		tc.mutate(&cfg)
		var out strings.Builder
		err := server.Doctor(context.Background(), cfg, nil, "", 0, &out)
		if (err != nil) != tc.fails {
			t.Errorf("%s: %v\n%s", tc.name, err, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: no %q in:\n%s", tc.name, w, out.String())
			}
		}
	}
}
