package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestClientTLS: ClientTLS trusts the CAs of ca_file (an endpoint signed
// by a private CA is refused without it), presents the client
// certificate, and takes a renewed one without a restart; a renewal that
// does not load keeps the last good pair and is reported, then cleared.
func TestClientTLS(t *testing.T) {
	ca, clients := tlstest.NewCA(t, "private"), tlstest.NewCA(t, "clients")
	srv := tlstest.MutualServer(t, ca, clients, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	clients.Client(t, "first").CopyTo(t, certFile, keyFile)
	var mu sync.Mutex
	var reported []error
	onError := func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
	get := func(c *tls.Config) (string, error) {
		t.Helper()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c, DisableKeepAlives: true}, Timeout: 10 * time.Second}
		r, err := hc.Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		return string(b), err
	}

	// The system's roots do not know the private CA.
	noCA, err := ClientTLS(config.ClientTLS{CertFile: certFile, KeyFile: keyFile}, 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := get(noCA); !errors.As(err, &unknown) {
		t.Fatalf("without ca_file: %v; want an unknown authority", err)
	}
	// Without a client certificate the endpoint refuses the handshake.
	noCert, err := ClientTLS(config.ClientTLS{CAFile: ca.File}, 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(noCert); err == nil {
		t.Fatalf("without a client certificate: answered %q; want a refused handshake", got)
	}

	c, err := ClientTLS(config.ClientTLS{CAFile: ca.File, CertFile: certFile, KeyFile: keyFile}, 10*time.Millisecond, onError)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(c); err != nil || got != "first" {
		t.Fatalf("got %q, %v; want the client certificate first", got, err)
	}
	clients.Client(t, "renewed").CopyTo(t, certFile, keyFile)
	time.Sleep(20 * time.Millisecond) // past the check interval
	if got, err := get(c); err != nil || got != "renewed" {
		t.Fatalf("after a renewal: %q, %v; want the renewed certificate", got, err)
	}
	if err := os.WriteFile(keyFile, []byte("half a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got, err := get(c); err != nil || got != "renewed" {
		t.Fatalf("after a renewal that does not load: %q, %v; want the last good certificate", got, err)
	}
	mu.Lock() // a good reload reports nil
	if n := len(reported); n == 0 || reported[n-1] == nil || !strings.Contains(reported[n-1].Error(), keyFile) {
		t.Errorf("reported %v; want an error naming %s last", reported, keyFile)
	}
	mu.Unlock()
	clients.Client(t, "fixed").CopyTo(t, certFile, keyFile)
	time.Sleep(20 * time.Millisecond)
	if got, err := get(c); err != nil || got != "fixed" {
		t.Fatalf("after the files were fixed: %q, %v", got, err)
	}
	mu.Lock()
	if n := len(reported); n == 0 || reported[n-1] != nil {
		t.Errorf("reported %v; want the error cleared (nil)", reported)
	}
	mu.Unlock()
}

// TestClientTLSBadFiles: files that do not load fail at once, naming
// them.
func TestClientTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	clients := tlstest.NewCA(t, "clients")
	pair, other := clients.Client(t, "a"), clients.Client(t, "b")
	for _, tc := range []struct {
		name string
		c    config.ClientTLS
		want string
	}{
		{"missing CA", config.ClientTLS{CAFile: filepath.Join(dir, "none.pem")}, "none.pem"},
		{"CA not PEM", config.ClientTLS{CAFile: notPEM}, "no PEM certificate"},
		{"key of another certificate", config.ClientTLS{CertFile: pair.CertFile, KeyFile: other.KeyFile}, pair.CertFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ClientTLS(tc.c, time.Second, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ClientTLS: %v; want an error naming %q", err, tc.want)
			}
		})
	}
}
