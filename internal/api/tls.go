package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// ErrTLSFileMode is a CA file or CRL file that others than its owner may
// write: whoever writes the API port's client CA makes wail accept any
// client certificate, its CRL stops a revocation, and the CA wail trusts
// as a client (schema_registry.tls, sinks.tls) lets them read and change
// what wail sends.
var ErrTLSFileMode = errors.New("a TLS CA or CRL file is writable by others than its owner")

// ServerTLS returns the API port's TLS configuration (TLS 1.2 at least,
// HTTP/2 and HTTP/1.1): the certificate and key, and the client CA for
// mutual TLS, read again when their files change (checked at most every
// interval, at a handshake), so a renewal needs no restart: connections
// made before it keep the certificate they got. A renewal that does not
// load (a key that does not match, half a file) keeps the last good files
// and is reported to onError (nil once they load again). onLoad, if set,
// gets the certificate of every pair that loads. With a CRL file, a
// client certificate (or intermediate) it lists is refused at the
// handshake, a resumed one's too. clientCAs returns the client CA pool and
// revocations in force (nil without a client CA), checking the files as a
// handshake does: the guard checks the certificates of connections made
// before a change against them (Guard.UseClientCAs).
func ServerTLS(c config.TLS, interval time.Duration, onError func(error), onLoad func(*x509.Certificate)) (_ *tls.Config, clientCAs func() *ClientTrust, _ error) {
	// The CAs the client CA file held at a load that worked: the list of
	// one removed since revokes nothing the file trusts and is skipped,
	// so that the removal takes effect (refusing the whole reload kept
	// the removed CA trusted); one of a CA never held is a wrong file.
	var held []*x509.Certificate
	load := func() (serverFiles, error) {
		var f serverFiles
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return f, fmt.Errorf("TLS certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
		}
		f.cert = &cert
		if c.ClientCAFile != "" {
			pem, err := readTrustFile(c.ClientCAFile)
			if err != nil {
				return f, fmt.Errorf("TLS client CA: %w", err)
			}
			f.clientCAs = &ClientTrust{Pool: x509.NewCertPool()}
			if !f.clientCAs.Pool.AppendCertsFromPEM(pem) {
				return f, fmt.Errorf("TLS client CA %s: no PEM certificate in it", c.ClientCAFile)
			}
			if c.CRLFile != "" {
				cas, err := parseCerts(pem)
				if err != nil {
					return f, fmt.Errorf("TLS client CA %s: %w", c.ClientCAFile, err)
				}
				if f.clientCAs.revoked, err = loadRevoked(c.CRLFile, cas, held); err != nil {
					return f, err
				}
				held = heldCAs(held, cas)
			}
		}
		if onLoad != nil {
			onLoad(cert.Leaf) // parsed by LoadX509KeyPair
		}
		return f, nil
	}
	files := []string{c.CertFile, c.KeyFile}
	if c.ClientCAFile != "" {
		files = append(files, c.ClientCAFile)
	}
	if c.CRLFile != "" {
		files = append(files, c.CRLFile)
	}
	w, err := auth.Watch(files, interval, load, onError)
	if err != nil {
		return nil, nil, err
	}
	clientAuth := tls.NoClientCert
	switch {
	case c.RequireClientCert:
		clientAuth = tls.RequireAndVerifyClientCert
	case c.ClientCAFile != "":
		clientAuth = tls.VerifyClientCertIfGiven
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		f := w.Get()
		out := base.Clone()
		out.Certificates = []tls.Certificate{*f.cert}
		out.ClientAuth = clientAuth
		if t := f.clientCAs; t != nil {
			out.ClientCAs = t.Pool
			if len(t.revoked) > 0 {
				// Run after the chains are verified, resumptions
				// included.
				out.VerifyConnection = func(cs tls.ConnectionState) error { return t.check(cs.VerifiedChains) }
			}
		}
		return out, nil
	}
	return cfg, func() *ClientTrust { return w.Get().clientCAs }, nil
}

// readTrustFile reads a CA or CRL file, refusing one that others than its
// owner may write (ErrTLSFileMode): whoever could write it could make wail
// trust their certificates.
func readTrustFile(path string) ([]byte, error) {
	f, err := auth.OpenChecked(path, ErrTLSFileMode, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

type serverFiles struct {
	cert      *tls.Certificate
	clientCAs *ClientTrust
}

// ClientTLS returns the TLS configuration of wail as a client of another
// service (an external schema registry, webhook endpoints): TLS 1.2 at
// least, the CAs of c.CAFile (PEM; empty: the system's roots), read now,
// and the client certificate of c.CertFile and c.KeyFile (empty: none),
// read again when its files change (checked at most every interval, at a
// handshake), so a renewal needs no restart. A renewal that does not load
// keeps the last good pair and is reported to onError (nil once the
// files load again).
func ClientTLS(c config.ClientTLS, interval time.Duration, onError func(error)) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := readTrustFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile == "" && c.KeyFile == "" {
		return cfg, nil
	}
	w, err := auth.Watch([]string{c.CertFile, c.KeyFile}, interval, func() (*tls.Certificate, error) {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
		}
		return &pair, nil
	}, onError)
	if err != nil {
		return nil, err
	}
	// Whatever the server asks for: a server that wants no certificate
	// ignores it; one whose CAs did not sign it refuses the handshake,
	// saying so.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return w.Get(), nil }
	return cfg, nil
}
