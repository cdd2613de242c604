package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestCRLRevokesClientCertificates: a client certificate listed in
// security.tls.crl_file is refused at the handshake; one listed after its
// connection's handshake is refused on that connection at its next call
// (401 naming the revocation, and the connection ends), as a client CA
// removed is; the others go on.
func TestCRLRevokesClientCertificates(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srvPair := ca.Server(t, "wail-server")
	dir := t.TempDir()
	crlFile := filepath.Join(dir, "clients.crl")
	early, late, kept := ca.Client(t, "early"), ca.Client(t, "late"), ca.Client(t, "kept")
	ca.CRL(t, crlFile, early)
	cfg, clientCAs, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File, CRLFile: crlFile}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.Grants = []config.Grant{{Principal: "cert:early", Allow: []string{"read:t"}},
			{Principal: "cert:late", Allow: []string{"read:t"}}, {Principal: "cert:kept", Allow: []string{"read:t"}}}
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	g.UseClientCAs(clientCAs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := g.Caller(r)
		_, _ = io.WriteString(w, p.String())
	})), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = hs.Serve(tls.NewListener(ln, cfg)) }()
	defer hs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(p tlstest.Pair) *http.Client {
		pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	}
	get := func(hc *http.Client) (code int, body string, reused bool) {
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
	// TLS 1.3: the client learns of the refusal after its side of the
	// handshake, as an alert or as a write to a connection the server
	// closed ("broken pipe"): any failure without an answer is one.
	if code, body, _ := get(client(early)); code != 0 {
		t.Fatalf("a revoked certificate: %d %q; want the handshake refused", code, body)
	}
	lc, kc := client(late), client(kept)
	defer lc.CloseIdleConnections()
	defer kc.CloseIdleConnections()
	for _, c := range []struct {
		hc   *http.Client
		want string
	}{{lc, "cert:late"}, {kc, "cert:kept"}} {
		if code, body, _ := get(c.hc); code != http.StatusOK || body != c.want {
			t.Fatalf("a certificate not listed: %d %q", code, body)
		}
	}
	ca.CRL(t, crlFile, early, late)
	code, body, reused := get(lc)
	if code != http.StatusUnauthorized || !reused || !strings.Contains(body, "revoked") || !strings.Contains(body, `"late"`) {
		t.Fatalf("a certificate revoked after its handshake, on its kept connection: %d %q, reused %v; want 401 naming the revocation", code, body, reused)
	}
	time.Sleep(100 * time.Millisecond) // the GOAWAY arrives
	if code, body, _ := get(lc); code != 0 {
		t.Fatalf("a new connection of the revoked certificate: %d %q; want the handshake refused", code, body)
	}
	if code, body, _ := get(kc); code != http.StatusOK || body != "cert:kept" {
		t.Fatalf("a certificate not listed, after the change: %d %q", code, body)
	}
}

// TestCRLFileRefused: a revocation list that does not load stops the
// start, saying why: one signed by a CA the client CA file does not hold
// (it could revoke nothing of its CAs: a wrong file), one that is no
// list, a missing file.
func TestCRLFileRefused(t *testing.T) {
	t.Parallel()
	ca, other := tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "other")
	impostor := tlstest.NewCA(t, "clients") // the client CA's name, another key
	srvPair := ca.Server(t, "wail-server")
	dir := t.TempDir()
	otherCRL, garbage, impostorCRL := filepath.Join(dir, "other.crl"), filepath.Join(dir, "garbage.crl"), filepath.Join(dir, "impostor.crl")
	other.CRL(t, otherCRL)
	impostor.CRL(t, impostorCRL)
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{otherCRL, "signed by no CA of the client CA file"},
		{impostorCRL, "signed by no CA of the client CA file"},
		{garbage, "no X509 CRL block"},
		{filepath.Join(dir, "none.crl"), "none.crl"},
	} {
		_, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File, CRLFile: tc.file}, 0, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("crl_file %s: %v; want an error saying %q", filepath.Base(tc.file), err, tc.want)
		}
	}
}
