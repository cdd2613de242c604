package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
)

// Security is TLS and access control on the API port (README "Security").
// Left as it is, the API is open on loopback only: a listen address that
// other hosts can reach needs TLS and auth, or insecure.
type Security struct {
	TLS  TLS  `yaml:"tls"`
	Auth Auth `yaml:"auth"`
	// Insecure lets the API listen on an address other hosts reach
	// without TLS and auth (anyone who reaches the port may then do
	// anything).
	Insecure bool `yaml:"insecure"`
	// MetricsListen, if set, serves /metrics and /healthz on their own
	// port, without TLS or auth (bind it to a private interface); the API
	// port then requires the metrics permission for /metrics when auth is
	// on.
	MetricsListen string `yaml:"metrics_listen"`
	// AllowedHosts are the names, besides localhost (and names under
	// .localhost), IP addresses, listen's host and metrics_listen's, that
	// the API port answers to over plain HTTP with auth off (and to
	// which metrics_listen's port shows /healthz's conditions):
	// "wail.internal", ".example.com" (it and its subdomains), or "*"
	// (any). A request with another Host is refused 403 (/healthz: its
	// conditions are hidden): a page of a site
	// whose name was pointed at wail's address (DNS rebinding) is the
	// browser's own origin, so the console's origin checks let it
	// through.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Quotas bound each principal's rate of calls.
	Quotas Quotas `yaml:"quotas"`
	// ReloadInterval is how often the certificate, key, client CA and
	// tokens files are checked for changes (a change is loaded without a
	// restart).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Quotas are per-principal token buckets (per network address with auth
// off); a call over its quota is refused with resource_exhausted and the
// time to wait. 0 rates are no quota.
type Quotas struct {
	// WriteRate is the mutations per second a principal may write (a Write
	// batch counts each mutation).
	WriteRate float64 `yaml:"write_rate"`
	// WriteBurst is how many mutations a principal may write at once
	// above the rate (0: a second's worth).
	WriteBurst int `yaml:"write_burst"`
	// ReadRate is the reads per second a principal may make: Get,
	// DescribeTable and ListTables calls, Subscribe opens, and the schema
	// registry's reads.
	ReadRate float64 `yaml:"read_rate"`
	// ReadBurst is how many reads a principal may make at once above the
	// rate (0: a second's worth).
	ReadBurst int `yaml:"read_burst"`
}

// TLS of the API port.
type TLS struct {
	// CertFile is the server's certificate chain (PEM); with KeyFile it
	// turns TLS on (TLS 1.2 at least).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the server certificate's private key (PEM); one that
	// others may read, or others than its owner may write, is warned of
	// at the start (chmod 600).
	KeyFile string `yaml:"key_file"`
	// ClientCAFile (PEM) verifies the certificates clients present
	// (mutual TLS); a verified certificate's identity is a principal
	// ("cert:" + its common name, else its first URI or DNS SAN). One
	// that others than its owner may write is refused (chmod 644), as
	// whoever writes it makes any client certificate trusted.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert refuses connections without a client certificate
	// signed by client_ca_file (else one is optional and bearer tokens
	// work too).
	RequireClientCert bool `yaml:"require_client_cert"`
	// CRLFile holds certificate revocation lists (PEM "X509 CRL" blocks,
	// or one DER list) signed by CAs of client_ca_file: a client
	// certificate (or intermediate) they list is refused, at the
	// handshake and on connections made before the list changed. Read
	// again when it changes, like the other files; fetch it from your
	// CA on a schedule: a list past its next update is used as it is
	// (what it lists stays refused; what was revoked since is not).
	// Text before a PEM block (a comment) is skipped, and so is the list
	// of a CA removed from client_ca_file since the start (the removal
	// takes effect). One that others than its owner may write is
	// refused (chmod 644), as the client CA file is.
	CRLFile string `yaml:"crl_file"`
}

// Enabled reports whether TLS is on.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Auth is who may call the API.
type Auth struct {
	// Enabled requires every request but /healthz to come from a
	// principal (a bearer token or a verified client certificate) with a
	// grant for what it does.
	Enabled bool `yaml:"enabled"`
	// TokensSource is where the bearer tokens are kept: "file" (the
	// default: tokens_file, for one process) or "catalog" (an entry of the
	// store's table catalog, shared by every process on one PostgreSQL,
	// MySQL or Cassandra store).
	TokensSource string `yaml:"tokens_source"`
	// TokensFile holds the bearer tokens, hashed, with their grants
	// (`wail token create|ls|revoke`); "" is tokens.json in data_dir.
	TokensFile string `yaml:"tokens_file"`
	// TokensRefresh is how often a process reads the tokens from the
	// catalog (tokens_source: catalog): a token created or revoked through
	// another process takes effect here within it.
	TokensRefresh time.Duration `yaml:"tokens_refresh"`
	// TokensMaxStaleness: once the catalog could not be read for this
	// long, bearer tokens are refused (Unavailable) rather than a
	// revocation missed.
	TokensMaxStaleness time.Duration `yaml:"tokens_max_staleness"`
	// Grants give principals permissions, besides a token's own grants
	// (with enabled only: without it, nothing is checked).
	Grants []Grant `yaml:"grants"`
	// JWT, when jwks_url, jwks_file or issuer is set, also accepts bearer JWTs
	// (RS256, ES256, EdDSA) signed by a key of that set: principal
	// "jwt:<principal_claim>".
	JWT JWT `yaml:"jwt"`
}

// JWT is how bearer JWTs (from an OIDC provider, say) are verified.
type JWT struct {
	// JWKSURL is the key set's URL: https, or http only on a loopback
	// host; redirects only to the same host are followed.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSFile is a local key set file, instead of jwks_url; one that
	// others than its owner may write is refused (chmod 644), as whoever
	// writes it signs JWTs.
	JWKSFile string `yaml:"jwks_file"`
	// Issuer, when set, must be the token's iss. Without jwks_url and
	// jwks_file, the key set is the jwks_uri of the issuer's OpenID
	// Connect discovery document (issuer/.well-known/openid-configuration,
	// which must name the issuer exactly), read at the start and every
	// refresh.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be one of the token's aud (required then).
	// Without it, a token the issuer minted for another of its services
	// is accepted: wail warns of it at the start, and doctor too.
	Audience string `yaml:"audience"`
	// PrincipalClaim names the principal: jwt:<its value> (default sub).
	PrincipalClaim string `yaml:"principal_claim"`
	// Leeway is the clock skew allowed on exp, nbf, iat (default 30s).
	Leeway time.Duration `yaml:"leeway"`
	// Refresh is how often the key set is read again (default 5m; at
	// least 10ms); while none was read since the start (the identity
	// provider did not answer: wail starts, refusing JWTs unavailable),
	// every refetch_interval.
	Refresh time.Duration `yaml:"refresh"`
	// RefetchInterval is the least time between two reads of the key set
	// for a kid not in it (default 30s; at least 10ms).
	RefetchInterval time.Duration `yaml:"refetch_interval"`
	// FetchTimeout bounds one read of jwks_url or of the discovery
	// document (default 10s).
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxJWKSBytes bounds the key set's size and the discovery
	// document's (default 1 MiB).
	MaxJWKSBytes int64 `yaml:"max_jwks_bytes"`
}

// Enabled reports whether JWTs are accepted.
func (j JWT) Enabled() bool { return j.JWKSURL != "" || j.JWKSFile != "" || j.Issuer != "" }

// Discovers reports whether the key set's URL is found by OpenID Connect
// discovery: the jwks_uri of issuer/.well-known/openid-configuration.
func (j JWT) Discovers() bool { return j.JWKSURL == "" && j.JWKSFile == "" && j.Issuer != "" }

// orDefault is d when v is 0.
func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// Durations are leeway, refresh, refetch_interval and fetch_timeout with
// their defaults.
func (j JWT) Durations() (leeway, refresh, refetch, timeout time.Duration) {
	return orDefault(j.Leeway, 30*time.Second), orDefault(j.Refresh, 5*time.Minute),
		orDefault(j.RefetchInterval, 30*time.Second), orDefault(j.FetchTimeout, 10*time.Second)
}

// Grant gives one principal permissions.
type Grant struct {
	// Principal is "token:NAME" or "cert:IDENTITY".
	Principal string `yaml:"principal"`
	// Allow are PERMISSION:TABLES entries: produce, read, consume, admin,
	// metrics or * on a table name pattern ('*' matches any run), such as
	// produce:orders, consume:orders_*, admin:*.
	Allow []string `yaml:"allow"`
}

// The sources of tokens (security.auth.tokens_source).
const (
	TokensFromFile    = "file"
	TokensFromCatalog = "catalog"
)

// TokensInCatalog reports whether the tokens live in the store's catalog.
func (a Auth) TokensInCatalog() bool { return a.TokensSource == TokensFromCatalog }

// Refresh is tokens_refresh (0: 2s).
func (a Auth) Refresh() time.Duration {
	if a.TokensRefresh == 0 {
		return 2 * time.Second
	}
	return a.TokensRefresh
}

// Staleness is tokens_max_staleness (0: 30s).
func (a Auth) Staleness() time.Duration {
	if a.TokensMaxStaleness == 0 {
		return 30 * time.Second
	}
	return a.TokensMaxStaleness
}

// TokensPath is auth.tokens_file, or tokens.json in data_dir.
func (c *Config) TokensPath() string {
	if c.Security.Auth.TokensFile != "" {
		return c.Security.Auth.TokensFile
	}
	return c.DataDir + "/tokens.json"
}

func (c *Config) validateSecurity() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	s := c.Security
	check((s.TLS.CertFile == "") == (s.TLS.KeyFile == ""), "security.tls.cert_file and key_file go together")
	check(s.TLS.ClientCAFile == "" || s.TLS.Enabled(), "security.tls.client_ca_file needs cert_file and key_file (mutual TLS is TLS)")
	check(!s.TLS.RequireClientCert || s.TLS.ClientCAFile != "", "security.tls.require_client_cert needs client_ca_file")
	check(s.TLS.CRLFile == "" || s.TLS.ClientCAFile != "", "security.tls.crl_file needs client_ca_file (the lists revoke client certificates of its CAs)")
	check(s.ReloadInterval >= 10*time.Millisecond, "security.reload_interval %s is below 10ms", s.ReloadInterval)
	a := s.Auth
	check(a.TokensSource == "" || a.TokensSource == TokensFromFile || a.TokensSource == TokensFromCatalog,
		"security.auth.tokens_source %q is neither file nor catalog", a.TokensSource)
	check(!a.TokensInCatalog() || c.Store.Kind != StorePebble,
		"security.auth.tokens_source catalog needs a store that processes share (postgres, mysql, cassandra); the embedded store has one process: use tokens_source file")
	check(a.TokensRefresh == 0 || a.TokensRefresh >= 10*time.Millisecond, "security.auth.tokens_refresh %s is below 10ms", a.TokensRefresh)
	check(a.Staleness() >= a.Refresh(), "security.auth.tokens_max_staleness %s is below tokens_refresh %s", a.Staleness(), a.Refresh())
	if j := a.JWT; j.Enabled() {
		check(j.JWKSURL == "" || j.JWKSFile == "", "security.auth.jwt: set jwks_url or jwks_file, not both")
		if j.JWKSURL != "" {
			err := auth.CheckKeySetURL(j.JWKSURL)
			check(err == nil, "security.auth.jwt.jwks_url %q must be https (http only on a loopback host)", auth.Redacted(j.JWKSURL))
		}
		if j.Discovers() {
			err := auth.CheckKeySetURL(j.Issuer)
			check(err == nil, "security.auth.jwt.issuer %q: without jwks_url or jwks_file the key set is found by OIDC discovery at the issuer, which must be https (http only on a loopback host)", j.Issuer)
		}
		check(j.Leeway >= 0 && j.Refresh >= 0 && j.RefetchInterval >= 0 && j.FetchTimeout >= 0 && j.MaxJWKSBytes >= 0,
			"security.auth.jwt durations and max_jwks_bytes must not be negative (0: the default)")
		check(a.Enabled, "security.auth.jwt needs security.auth.enabled")
	}
	check(a.Enabled || len(a.Grants) == 0, "security.auth.grants need security.auth.enabled (--auth): without it every caller may do everything")
	q := s.Quotas
	check(q.WriteRate >= 0 && q.ReadRate >= 0 && q.WriteBurst >= 0 && q.ReadBurst >= 0, "security.quotas must not be negative (0: no quota)")
	for i, g := range s.Auth.Grants {
		_, err := auth.ParsePrincipal(g.Principal)
		check(err == nil, "security.auth.grants[%d]: %v", i, err)
		_, err = auth.ParseGrants(g.Allow)
		check(err == nil, "security.auth.grants[%d]: %v", i, err)
	}
	for _, h := range s.AllowedHosts {
		name := strings.TrimPrefix(h, ".")
		check(h == "*" || (name != "" && !strings.ContainsAny(name, ":/[]@ *") && !strings.HasPrefix(name, ".")),
			"security.allowed_hosts: %q is not a host name: give a name (wail.internal), a domain with its subdomains (.example.com) or * (any), no scheme or port", h)
	}
	if s.MetricsListen != "" {
		err := checkListen(s.MetricsListen)
		check(err == nil, "security.metrics_listen %q: %v", s.MetricsListen, err)
	}
	return errs
}

// Loopback reports whether addr (host:port) only listens on loopback: a
// host that is a loopback IP or "localhost". An empty host, 0.0.0.0, ::
// and any other name or address are reachable from other hosts.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckExposure refuses an API that other hosts can reach without TLS and
// auth, unless security.insecure says so.
func (c *Config) CheckExposure() error {
	s := c.Security
	if Loopback(c.Listen) || s.Insecure || (s.TLS.Enabled() && s.Auth.Enabled) {
		return nil
	}
	var missing string
	switch {
	case !s.TLS.Enabled() && !s.Auth.Enabled:
		missing = "TLS and authentication"
	case !s.TLS.Enabled():
		missing = "TLS"
	default:
		missing = "authentication"
	}
	return fmt.Errorf("refusing to serve the API on %s, which other hosts can reach, without %s: "+
		"set security.tls (--tls-cert, --tls-key) and security.auth (--auth), "+
		"or listen on 127.0.0.1, or accept an open API with --insecure (security.insecure) (README \"Security\")", c.Listen, missing)
}
