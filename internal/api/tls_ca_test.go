package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestClientCARemovedEndsConnection: once the client CA file no longer
// holds the CA of a client certificate (cut off after a compromise), a
// connection made before, kept alive (gRPC clients keep theirs for days),
// is refused at its next call and ends, as a new connection's handshake
// is refused (TestClientCARemovedRefusesResumption); and a stream opened
// with the certificate (here the console's tail, as Rechecker checks it)
// ends at its next check. The handshake alone checked the chain.
func TestClientCARemovedEndsConnection(t *testing.T) {
	t.Parallel()
	old, next := tlstest.NewCA(t, "clients-old"), tlstest.NewCA(t, "clients-new")
	srvPair := old.Server(t, "wail-server")
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	copyFile(t, old.File, caFile)
	cfg, clientCAs, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: caFile}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := newGuardWithToken(t, nil, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	g.UseClientCAs(clientCAs)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	g.now = func() time.Time { return *now.Load() }
	var recheck atomic.Pointer[func() error] // the first request's
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := g.Rechecker(r)
		recheck.CompareAndSwap(nil, &rc)
		p, _ := g.Caller(r)
		_, _ = io.WriteString(w, p.String())
	}))}
	go func() { _ = hs.Serve(tls.NewListener(ln, cfg)) }()
	defer hs.Close()

	roots := x509.NewCertPool()
	roots.AddCert(old.Cert)
	cl := old.Client(t, "svc")
	pair, err := tls.LoadX509KeyPair(cl.CertFile, cl.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	defer hc.CloseIdleConnections()
	get := func() (code int, body string, reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ln.Addr().String()+"/console/api/whoami", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error(), reused
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), reused
	}
	if code, body, _ := get(); code != http.StatusOK || body != "cert:svc" {
		t.Fatalf("a certificate of the client CA: %d %q", code, body)
	}
	if code, body, reused := get(); code != http.StatusOK || body != "cert:svc" || !reused {
		t.Fatalf("again: %d %q, connection reused %v", code, body, reused)
	}
	if err := (*recheck.Load())(); err != nil {
		t.Fatalf("the stream's check before the change: %v", err)
	}
	copyFile(t, next.File, caFile) // the old CA's clients are cut off
	if code, body, reused := get(); code != http.StatusUnauthorized || !reused {
		t.Fatalf("a certificate of a CA the client CA file no longer holds, on the kept connection: %d %q (want 401), reused %v", code, body, reused)
	}
	due := start.Add(g.recheckEvery) // the stream's next check
	now.Store(&due)
	if err := (*recheck.Load())(); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("the stream's check after the change: %v, want unauthenticated", err)
	}
	time.Sleep(100 * time.Millisecond) // the GOAWAY arrives
	if code, body, reused := get(); reused || code == http.StatusOK {
		t.Fatalf("the call after the refusal: %d %q, reused %v; want a new connection, refused", code, body, reused)
	}
}
