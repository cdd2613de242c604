package api

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestTLSPolicy: the API port refuses a client without a certificate when
// security.tls.require_client_cert is set, and TLS below 1.2; wail as a
// client (ClientTLS) refuses a server below 1.2 likewise; and a CA file
// holding no certificate is an error, not an empty pool.
func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srvPair := ca.Server(t, "wail-server")
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	handshake := func(srv, cl *tls.Config) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			a, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer a.Close()
			done <- tls.Server(a, srv).Handshake()
		}()
		b, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		c := tls.Client(b, cl)
		err = c.Handshake()
		if err != nil {
			b.Close() // the server's side ends too
		}
		// The server verifies the client's certificate after the
		// client's side ended (TLS 1.3): its refusal is its own.
		if serr := <-done; err == nil {
			err = serr
		}
		return err
	}
	require, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File, RequireClientCert: true}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := ca.Client(t, "svc")
	clPair, err := tls.LoadX509KeyPair(svc.CertFile, svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(require, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{clPair}}); err != nil {
		t.Fatalf("a client with its certificate: %v (else the refusals below prove nothing)", err)
	}
	if err := handshake(require, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}); err == nil {
		t.Error("a client without a certificate got through require_client_cert")
	}
	if err := handshake(require, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("the API port took TLS 1.1")
	}
	if _, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: empty}, 0, nil, nil); err == nil {
		t.Error("a client CA file without a certificate was taken")
	}

	old := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	old.Certificates = make([]tls.Certificate, 1)
	if old.Certificates[0], err = tls.LoadX509KeyPair(srvPair.CertFile, srvPair.KeyFile); err != nil {
		t.Fatal(err)
	}
	cl, err := ClientTLS(config.ClientTLS{CAFile: ca.File}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.ServerName = "127.0.0.1"
	if err := handshake(old, cl); err == nil {
		t.Error("wail as a client took TLS 1.1")
	}
	if _, err := ClientTLS(config.ClientTLS{CAFile: empty}, 0, nil); err == nil {
		t.Error("a CA file without a certificate was taken (as a client)")
	}
}
