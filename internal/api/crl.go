package api

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// errCertRevoked: a certificate of the client's chain is listed in
// security.tls.crl_file.
var errCertRevoked = errors.New("is revoked")

// ClientTrust is what client certificates are checked against: the
// client CA pool (security.tls.client_ca_file) and the serials the
// revocation lists of its CAs list (security.tls.crl_file), as last read.
type ClientTrust struct {
	Pool    *x509.CertPool
	revoked map[string]bool // by revokedKey
}

func revokedKey(rawIssuer []byte, serial fmt.Stringer) string {
	return string(rawIssuer) + "\x00" + serial.String()
}

// check refuses chains (verified ones, leaf first, root last) every one
// of which has a revoked certificate: a revoked leaf is in all of them; a
// revoked intermediate, in those through it.
func (t *ClientTrust) check(chains [][]*x509.Certificate) error {
	if t == nil || len(t.revoked) == 0 {
		return nil
	}
	var err error
	for _, chain := range chains {
		if err = t.checkChain(chain); err == nil {
			return nil
		}
	}
	return err
}

func (t *ClientTrust) checkChain(chain []*x509.Certificate) error {
	for i, c := range chain {
		if i == len(chain)-1 && len(chain) > 1 {
			break // the root: in client_ca_file, trusted as such
		}
		if t.revoked[revokedKey(c.RawIssuer, c.SerialNumber)] {
			what := "certificate"
			if i > 0 {
				what = "intermediate CA certificate"
			}
			return fmt.Errorf("%s %q (serial %s, issued by %q) %w: security.tls.crl_file lists it",
				what, c.Subject.CommonName, c.SerialNumber, c.Issuer.CommonName, errCertRevoked)
		}
	}
	return nil
}

// loadRevoked reads the revocation lists of file (PEM "X509 CRL" blocks,
// or one DER list); each must be signed by one of cas (the client CA
// file's certificates), else by one of held (the CAs it held before:
// removed since, their lists revoke nothing it trusts and are skipped).
func loadRevoked(file string, cas, held []*x509.Certificate) (map[string]bool, error) {
	b, err := readTrustFile(file)
	if err != nil {
		return nil, fmt.Errorf("TLS CRL file: %w", err)
	}
	// PEM blocks may follow text (a comment, `openssl crl -text`), as
	// pem.Decode allows; a file with no PEM block at all is one DER list.
	var ders [][]byte
	blocks := 0
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		blocks++
		if blk.Type == "X509 CRL" {
			ders = append(ders, blk.Bytes)
		}
	}
	switch {
	case blocks == 0:
		ders = [][]byte{b}
	case len(ders) == 0:
		return nil, fmt.Errorf("TLS CRL file %s: no X509 CRL block in it", file)
	}
	revoked := map[string]bool{}
	for i, der := range ders {
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("TLS CRL file %s, list %d: %w", file, i+1, err)
		}
		if !signedBy(l, cas) {
			if signedBy(l, held) {
				continue // of a CA removed from the client CA file
			}
			return nil, fmt.Errorf("TLS CRL file %s, list %d (issuer %q): signed by no CA of the client CA file; "+
				"give the lists of the CAs that file holds", file, i+1, l.Issuer.CommonName)
		}
		for _, e := range l.RevokedCertificateEntries {
			revoked[revokedKey(l.RawIssuer, e.SerialNumber)] = true
		}
	}
	return revoked, nil
}

// signedBy reports whether one of cas signed l.
func signedBy(l *x509.RevocationList, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if string(ca.RawSubject) == string(l.RawIssuer) && l.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// heldCAs adds to held the CAs of cas it does not hold yet.
func heldCAs(held, cas []*x509.Certificate) []*x509.Certificate {
	for _, ca := range cas {
		if !slices.ContainsFunc(held, ca.Equal) {
			held = append(held, ca)
		}
	}
	return held
}

// parseCerts returns the certificates of a PEM file's CERTIFICATE blocks.
func parseCerts(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := pemBytes; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
