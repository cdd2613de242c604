package api

import (
	"crypto/x509"
	"errors"
	"sync"
	"time"
)

// A TLS handshake checks a client certificate against the client CA pool
// of that moment, and a connection kept alive (gRPC clients keep theirs
// for days) keeps the principal: a CA removed from
// security.tls.client_ca_file (cut off after a compromise) would still
// authenticate its clients' connections made before. So the guard checks
// a certificate's chain again against the pool in force, at each request
// and as a stream's credential is checked again, as it checks the
// certificate's expiry (authenticate, recheck).

// errCertUntrusted: the client CA file changed since the connection's
// handshake and no longer holds the certificate's CA.
var errCertUntrusted = errors.New("no longer chains to a CA of the client CA file")

// maxCertAnswers bounds the answers clientCAs keeps per pool.
const maxCertAnswers = 1024

// clientCAs is the client CA pool in force (security.tls.client_ca_file,
// read again when it changes) and what it said of the certificates seen.
type clientCAs struct {
	trust func() *ClientTrust

	mu      sync.Mutex
	of      *ClientTrust     // the trust answers holds answers for
	answers map[string]error // by the certificate's DER
}

// UseClientCAs gives the guard the client CA pool and revocations in
// force (ServerTLS's clientCAs); call it before serving.
func (g *Guard) UseClientCAs(trust func() *ClientTrust) {
	g.cas = &clientCAs{trust: trust}
}

// check returns why (crypto/x509's error) certs (a client's, leaf first, as it presented them)
// no longer chain to the pool in force, or nil. A chain is verified once
// per certificate and pool (a pool read again forgets the answers), at
// most maxCertAnswers certificates before they are all forgotten.
func (c *clientCAs) check(certs []*x509.Certificate, now time.Time) error {
	if c == nil || len(certs) == 0 {
		return nil
	}
	trust := c.trust()
	if trust == nil {
		return nil
	}
	key := string(certs[0].Raw)
	c.mu.Lock()
	if c.of != trust || len(c.answers) >= maxCertAnswers {
		c.of, c.answers = trust, map[string]error{}
	}
	err, known := c.answers[key]
	c.mu.Unlock()
	if known {
		return err
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	// As crypto/tls verifies a client's chain at the handshake.
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: trust.Pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		err = trust.check(chains)
	}
	c.mu.Lock()
	if c.of == trust {
		c.answers[key] = err
	}
	c.mu.Unlock()
	return err
}
