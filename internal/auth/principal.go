package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Principal is who made a request: a bearer token's name, a client
// certificate's identity or a JWT's principal claim. Grants name
// principals as "token:NAME", "cert:IDENTITY" and "jwt:NAME", so that one
// kind never passes for another of the same name.
type Principal struct {
	Kind Kind
	Name string
}

// Kind is how a principal authenticated.
type Kind string

// The kinds of principal.
const (
	KindToken Kind = "token" // a bearer token; Name is the token's name
	KindCert  Kind = "cert"  // a client certificate; Name is its identity (CertIdentity)
)

// ErrBadPrincipal is a principal that does not parse.
var ErrBadPrincipal = errors.New("bad principal")

func (p Principal) String() string { return string(p.Kind) + ":" + p.Name }

// IsZero reports the absent principal (an anonymous request).
func (p Principal) IsZero() bool { return p.Kind == "" }

// ParsePrincipal parses "token:NAME", "cert:IDENTITY" or "jwt:CLAIM".
func ParsePrincipal(s string) (Principal, error) {
	kind, name, ok := strings.Cut(s, ":")
	p := Principal{Kind: Kind(kind), Name: name}
	if !ok || (p.Kind != KindToken && p.Kind != KindCert && p.Kind != KindJWT) {
		return Principal{}, fmt.Errorf("%w %q: write token:NAME, cert:IDENTITY or jwt:CLAIM", ErrBadPrincipal, s)
	}
	if err := checkName(name); err != nil {
		return Principal{}, fmt.Errorf("%w %q: %w", ErrBadPrincipal, s, err)
	}
	if p.Kind == KindToken {
		if err := CheckTokenName(name); err != nil {
			return Principal{}, fmt.Errorf("%w %q: %w", ErrBadPrincipal, s, err)
		}
	}
	return p, nil
}

// checkName: 1..MaxName printable characters, no leading or trailing space.
func checkName(name string) error {
	if name == "" || len(name) > MaxName || strings.TrimSpace(name) != name ||
		strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("a name is 1..%d printable characters without leading or trailing spaces", MaxName)
	}
	return nil
}

// CertIdentity is the principal of a verified client certificate: its
// subject's common name, else its first URI SAN (a SPIFFE id, say), else
// its first DNS SAN. ok is false when it has none of them, or one that is
// not a valid name.
func CertIdentity(c *x509.Certificate) (p Principal, ok bool) {
	name := c.Subject.CommonName
	switch {
	case name != "":
	case len(c.URIs) > 0:
		name = c.URIs[0].String()
	case len(c.DNSNames) > 0:
		name = c.DNSNames[0]
	}
	if checkName(name) != nil {
		return Principal{}, false
	}
	return Principal{Kind: KindCert, Name: name}, true
}
