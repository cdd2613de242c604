package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestCRLFileWithText: a PEM revocation list file that begins with text
// (a comment naming the CA, or `openssl crl -text` output before the
// block, as CAs publish them) is read as PEM, like the client CA file.
// It was read as DER for not starting with "-----", and refused
// ("x509: malformed crl").
func TestCRLFileWithText(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	revoked := ca.Client(t, "revoked")
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.crl")
	ca.CRL(t, plain, revoked)
	block, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	cas := []*x509.Certificate{ca.Cert}
	for _, prefix := range []string{
		"",
		"# revocation list of the clients CA, fetched hourly\n",
		"Certificate Revocation List (CRL):\n        Version 2 (0x1)\n        Signature Algorithm: ecdsa-with-SHA256\n",
	} {
		file := filepath.Join(dir, "with-text.crl")
		if err := os.WriteFile(file, append([]byte(prefix), block...), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := loadRevoked(file, cas, nil)
		if err != nil {
			t.Errorf("a CRL file beginning with %q: %v", prefix, err)
			continue
		}
		trust := &ClientTrust{revoked: got}
		if err := trust.check([][]*x509.Certificate{{revoked.Cert, ca.Cert}}); err == nil {
			t.Errorf("a CRL file beginning with %q: the certificate it lists is not refused", prefix)
		}
	}
}

// TestCRLRefusesResumedSessions: a client that resumes a TLS session
// made before its certificate was listed (a session ticket, TLS 1.3) is
// refused at the handshake all the same: crypto/tls runs VerifyConnection
// on resumptions too, with the chains of the session, and the
// configuration of each handshake holds the lists as last read. A client
// whose certificate is not listed resumes (the test's control).
func TestCRLRefusesResumedSessions(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srvPair := ca.Server(t, "wail-server")
	crlFile := filepath.Join(t.TempDir(), "clients.crl")
	other, late, kept := ca.Client(t, "other"), ca.Client(t, "late"), ca.Client(t, "kept")
	ca.CRL(t, crlFile, other)
	cfg, _, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File,
		CRLFile: crlFile, RequireClientCert: true}, 10*time.Millisecond, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = io.WriteString(c, "ok")
				}
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	clientCfg := func(p tlstest.Pair) *tls.Config {
		pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{pair},
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	}
	// dial connects and reads the server's answer (which also takes the
	// session ticket): resumed says whether the session was resumed.
	dial := func(c *tls.Config) (resumed bool, err error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), c)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(conn)
		if err == nil && string(b) != "ok" {
			err = io.ErrUnexpectedEOF
		}
		return conn.ConnectionState().DidResume, err
	}
	lateCfg, keptCfg := clientCfg(late), clientCfg(kept)
	for _, c := range []*tls.Config{lateCfg, keptCfg} {
		if _, err := dial(c); err != nil {
			t.Fatalf("a certificate not listed: %v", err)
		}
	}
	if resumed, err := dial(keptCfg); err != nil || !resumed {
		t.Fatalf("a certificate not listed, again: resumed %v, %v; want a resumed session", resumed, err)
	}
	time.Sleep(20 * time.Millisecond) // a modification time the watcher tells apart
	ca.CRL(t, crlFile, other, late)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resumed, err := dial(lateCfg)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a certificate listed since its session was made still connects (resumed %v)", resumed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resumed, err := dial(keptCfg); err != nil || !resumed {
		t.Fatalf("a certificate not listed, after the change: resumed %v, %v; want a resumed session", resumed, err)
	}
}

// TestCRLCARemoved: a CA removed from the client CA file (say after its
// compromise) is no longer trusted within reload_interval although the
// CRL file still holds its list: that list revokes nothing the new file
// trusts. The whole reload was refused ("signed by no CA of the client CA
// file") and the last good files kept, the removed CA with them: its
// certificates kept connecting until someone also edited the CRL file. A
// list of a CA that the client CA file never held is still refused at a
// reload (a wrong file: the lists in force are kept).
func TestCRLCARemoved(t *testing.T) {
	t.Parallel()
	a, b, stranger := tlstest.NewCA(t, "clients-a"), tlstest.NewCA(t, "clients-b"), tlstest.NewCA(t, "stranger")
	srvPair := a.Server(t, "wail-server")
	dir := t.TempDir()
	caFile, crlFile := filepath.Join(dir, "client-cas.pem"), filepath.Join(dir, "clients.crl")
	revokedA, clientB := a.Client(t, "revoked-a"), b.Client(t, "b")
	concat := func(out string, files ...string) {
		t.Helper()
		var all []byte
		for _, f := range files {
			bs, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, bs...)
		}
		tmp := out + ".tmp"
		if err := os.WriteFile(tmp, all, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, out); err != nil {
			t.Fatal(err)
		}
	}
	crlA, crlB, crlStranger := filepath.Join(dir, "a.crl"), filepath.Join(dir, "b.crl"), filepath.Join(dir, "stranger.crl")
	a.CRL(t, crlA, revokedA)
	b.CRL(t, crlB)
	stranger.CRL(t, crlStranger)
	concat(caFile, a.File, b.File)
	concat(crlFile, crlA, crlB)
	var problem error
	var mu sync.Mutex
	_, clientCAs, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: caFile, CRLFile: crlFile},
		10*time.Millisecond, func(err error) { mu.Lock(); problem = err; mu.Unlock() }, nil)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(p tlstest.Pair) error {
		trust := clientCAs()
		chains, err := p.Cert.Verify(x509.VerifyOptions{Roots: trust.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err == nil {
			err = trust.check(chains)
		}
		return err
	}
	if err := verify(clientB); err != nil {
		t.Fatalf("a certificate of a CA of the file: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	concat(caFile, a.File) // b removed; the CRL file still holds b's list
	deadline := time.Now().Add(5 * time.Second)
	for verify(clientB) == nil {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("a certificate of a CA removed from the client CA file is still trusted (reload: %v)", problem)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := verify(revokedA); err == nil {
		t.Error("the list of a CA kept no longer revokes")
	}
	mu.Lock()
	if problem != nil {
		t.Errorf("the reload reports %v", problem)
	}
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	concat(crlFile, crlStranger) // a wrong file
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		p := problem
		mu.Unlock()
		if p != nil {
			if !strings.Contains(p.Error(), "signed by no CA of the client CA file") {
				t.Errorf("the list of a stranger CA: %v", p)
			}
			break
		}
		_ = clientCAs()
		if time.Now().After(deadline) {
			t.Fatal("the list of a CA the client CA file never held is taken at a reload")
		}
	}
	if err := verify(revokedA); err == nil {
		t.Error("after a wrong CRL file, the lists in force were dropped")
	}
}
