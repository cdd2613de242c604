package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestClientCARemovedRefusesResumption: a client certificate of a CA that
// the client CA file no longer holds names no principal any more, also
// for a client holding a TLS session ticket from before the change
// (resuming it would keep the old principal for the ticket's lifetime,
// days). crypto/tls checks a resumed session's chain against the
// ClientCAs GetConfigForClient returns since Go 1.24.13/1.25.7; this
// guards it.
func TestClientCARemovedRefusesResumption(t *testing.T) {
	t.Parallel()
	old, next := tlstest.NewCA(t, "clients-old"), tlstest.NewCA(t, "clients-new")
	srvPair := old.Server(t, "wail-server")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "client-ca.pem")
	copyFile(t, old.File, caFile)
	cfg, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: caFile}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if len(r.TLS.VerifiedChains) > 0 {
			who = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s resumed=%v", who, r.TLS.DidResume)
	})}
	go func() { _ = hs.Serve(tls.NewListener(ln, cfg)) }()
	defer hs.Close()

	roots := x509.NewCertPool()
	roots.AddCert(old.Cert)
	cl := old.Client(t, "svc-revoked")
	pair, err := tls.LoadX509KeyPair(cl.CertFile, cl.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, // a connection per request
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair},
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}}}
	get := func() (string, error) {
		resp, err := hc.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(); err != nil || got != "svc-revoked resumed=false" {
		t.Fatalf("first connection: %q, %v", got, err)
	}
	if got, err := get(); err != nil || got != "svc-revoked resumed=true" {
		t.Fatalf("second connection: %q, %v; want a resumed session (else this test proves nothing)", got, err)
	}
	copyFile(t, next.File, caFile) // the old CA's clients are cut off
	if got, err := get(); err == nil && got != "anonymous resumed=false" {
		t.Fatalf("after the client CA changed, a certificate of the old CA got %q; want no principal", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredCertificateEndsConnection: a call on a connection whose
// client certificate expired since its handshake is refused (the
// handshake alone checked the dates: a connection kept alive kept the
// access), and the connection ends with that answer, so that the
// client's next call makes a new one with its renewed certificate.
func TestExpiredCertificateEndsConnection(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srvPair := ca.Server(t, "wail-server")
	cfg, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := newGuardWithToken(t, nil, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	g.now = func() time.Time { return *now.Load() }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g.Middleware(http.NotFoundHandler())}
	go func() { _ = hs.Serve(tls.NewListener(ln, cfg)) }()
	defer hs.Close()

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cl := ca.ClientUntil(t, "svc", start.Add(time.Hour))
	pair, err := tls.LoadX509KeyPair(cl.CertFile, cl.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	defer hc.CloseIdleConnections()
	// get returns the answer's status, its protocol and whether it came
	// on a connection used before.
	get := func() (int, string, bool) {
		t.Helper()
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ln.Addr().String()+"/metrics", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Proto, reused
	}
	if code, proto, _ := get(); code == http.StatusUnauthorized || proto != "HTTP/2.0" {
		t.Fatalf("a valid certificate: %d over %s", code, proto)
	}
	if code, _, reused := get(); code == http.StatusUnauthorized || !reused {
		t.Fatalf("a valid certificate again: %d, connection reused %v", code, reused)
	}
	later := start.Add(2 * time.Hour) // the certificate expired since the handshake
	now.Store(&later)
	if code, _, reused := get(); code != http.StatusUnauthorized || !reused {
		t.Fatalf("an expired certificate on the kept connection: %d (want 401), connection reused %v", code, reused)
	}
	time.Sleep(100 * time.Millisecond) // the GOAWAY arrives
	if _, _, reused := get(); reused {
		t.Fatal("the call after the refusal went on the connection of the expired certificate")
	}
}
