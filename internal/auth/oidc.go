package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DiscoveryPath is where an OpenID Connect issuer serves its discovery
// document (OpenID Connect Discovery 1.0, section 4).
const DiscoveryPath = "/.well-known/openid-configuration"

// discover reads the issuer's discovery document and takes its jwks_uri
// as the key set's URL. The document must name the configured issuer
// exactly, and jwks_uri must be https (http only on a loopback host), as
// security.auth.jwt.jwks_url must.
func (v *JWTVerifier) discover(ctx context.Context) error {
	doc := strings.TrimSuffix(v.cfg.Issuer, "/") + DiscoveryPath
	body, err := v.get(ctx, doc)
	if err != nil {
		return fmt.Errorf("OIDC discovery %s: %w", doc, err)
	}
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("OIDC discovery %s: not a discovery document: %w", doc, err)
	}
	switch {
	case d.Issuer != v.cfg.Issuer:
		return configError{fmt.Errorf("OIDC discovery %s: it names issuer %q, not %q (security.auth.jwt.issuer must be the issuer exactly)", doc, d.Issuer, v.cfg.Issuer)}
	case d.JWKSURI == "":
		return fmt.Errorf("OIDC discovery %s: it has no jwks_uri", doc)
	}
	if err := CheckKeySetURL(d.JWKSURI); err != nil {
		return configError{fmt.Errorf("OIDC discovery %s: jwks_uri: %w", doc, err)}
	}
	v.mu.Lock()
	v.jwksURL = d.JWKSURI
	v.mu.Unlock()
	return nil
}

// configError is a read of the key set that worked but found the
// configuration wrong (the issuer's discovery document names another
// issuer): it fails NewJWTVerifier even with StartUnread, as reading again
// will not help.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// CheckKeySetURL accepts an https URL, or an http one on a loopback host
// (a key set read in clear from another host could be anyone's).
func CheckKeySetURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return nil
	}
	return errors.New(s + " must be https (http only on a loopback host)")
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
