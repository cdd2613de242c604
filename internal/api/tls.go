package api

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// ServerTLS returns the API port's TLS configuration (TLS 1.2 at least,
// HTTP/2 and HTTP/1.1): the certificate and key, and the client CA for
// mutual TLS, read again when their files change (checked at most every
// interval, at a handshake), so a renewal needs no restart: connections
// made before it keep the certificate they got. A renewal that does not
// load (a key that does not match, half a file) keeps the last good files
// and is reported to onError (nil once they load again). onLoad, if set,
// gets the certificate of every pair that loads. clientCAs returns the
// client CA pool in force (nil without a client CA), checking the files
// as a handshake does: the guard checks the certificates of connections
// made before a change against it (Guard.UseClientCAs).
func ServerTLS(c config.TLS, interval time.Duration, onError func(error), onLoad func(*x509.Certificate)) (_ *tls.Config, clientCAs func() *x509.CertPool, _ error) {
	load := func() (serverFiles, error) {
		var f serverFiles
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return f, fmt.Errorf("TLS certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
		}
		f.cert = &cert
		if c.ClientCAFile != "" {
			pem, err := os.ReadFile(c.ClientCAFile)
			if err != nil {
				return f, fmt.Errorf("TLS client CA: %w", err)
			}
			f.clientCAs = x509.NewCertPool()
			if !f.clientCAs.AppendCertsFromPEM(pem) {
				return f, fmt.Errorf("TLS client CA %s: no PEM certificate in it", c.ClientCAFile)
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
		out.ClientCAs, out.ClientAuth = f.clientCAs, clientAuth
		return out, nil
	}
	return cfg, func() *x509.CertPool { return w.Get().clientCAs }, nil
}

type serverFiles struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool
}
