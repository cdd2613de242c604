package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml, want string // want: a substring of the error, "" for none
	}{
		{yaml: "security: {tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem, require_client_cert: true}, auth: {enabled: true}}"},
		{yaml: "security: {auth: {enabled: true, grants: [{principal: 'cert:orders svc', allow: ['produce:orders_*', metrics]}]}}"},
		{yaml: "security: {quotas: {write_rate: 100.5, write_burst: 10, read_rate: 5}}"},
		{yaml: "security: {tls: {cert_file: c.pem}}", want: "cert_file and key_file go together"},
		{yaml: "security: {tls: {client_ca_file: ca.pem}}", want: "client_ca_file needs cert_file"},
		{yaml: "security: {tls: {cert_file: c, key_file: k, crl_file: l.crl}}", want: "crl_file needs client_ca_file"},
		{yaml: "security: {tls: {cert_file: c, key_file: k, client_ca_file: ca.pem, crl_file: l.crl}}"},
		{yaml: "security: {tls: {cert_file: c, key_file: k, require_client_cert: true}}", want: "require_client_cert needs client_ca_file"},
		{yaml: "security: {auth: {grants: [{principal: alice, allow: [admin]}]}}", want: "security.auth.grants[0]: bad principal"},
		{yaml: "security: {auth: {grants: [{principal: 'token:alice', allow: ['write:t']}]}}", want: "permission \"write\""},
		// Grants without auth loaded, and did nothing: every caller could
		// do everything while the file seemed to say otherwise.
		{yaml: "security: {auth: {grants: [{principal: 'token:alice', allow: ['read:orders']}]}}",
			want: "security.auth.grants need security.auth.enabled (--auth): without it every caller may do everything"},
		{yaml: "security: {reload_interval: 1ms}", want: "reload_interval"},
		{yaml: "security: {quotas: {read_rate: -1}}", want: "security.quotas must not be negative"},
		{yaml: "security: {metrics_listen: nohost}", want: "security.metrics_listen"},
		{yaml: "security: {tls: {certfile: c.pem}}", want: "unknown key security.tls.certfile (did you mean security.tls.cert_file?)"},
		{yaml: "store: {kind: postgres, dsn: 'postgres://h/db'}\nsecurity: {auth: {enabled: true, tokens_source: catalog, tokens_refresh: 500ms, tokens_max_staleness: 10s}}"},
		{yaml: "security: {auth: {tokens_source: catalog}}", want: "use tokens_source file"},
		{yaml: "security: {auth: {tokens_source: db}}", want: "neither file nor catalog"},
		{yaml: "security: {auth: {tokens_refresh: 1ms}}", want: "tokens_refresh 1ms is below 10ms"},
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_url: 'https://idp.example/jwks', issuer: x, audience: wail, leeway: 1m}}}"},
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_url: 'http://127.0.0.1:8080/jwks'}}}"},
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_url: 'http://idp.example/jwks'}}}", want: "must be https (http only on a loopback host)"},
		// Named without its password.
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_url: 'http://wail:s3cret@idp.example/jwks'}}}", want: `"http://wail:xxxxx@idp.example/jwks" must be https`},
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_url: 'https://a/j', jwks_file: /j}}}", want: "jwks_url or jwks_file, not both"},
		{yaml: "security: {auth: {enabled: true, jwt: {jwks_file: /j, leeway: -1s}}}", want: "must not be negative"},
		{yaml: "security: {auth: {jwt: {jwks_file: /j}}}", want: "security.auth.jwt needs security.auth.enabled"},
		{yaml: "security: {auth: {enabled: true, jwt: {issuer: 'https://idp.example/realms/x', audience: wail}}}"},
		{yaml: "security: {auth: {enabled: true, jwt: {issuer: 'http://localhost:8080'}}}"},
		{yaml: "security: {auth: {enabled: true, jwt: {issuer: 'http://idp.example'}}}", want: "found by OIDC discovery at the issuer, which must be https"},
		{yaml: "security: {auth: {enabled: true, jwt: {issuer: idp}}}", want: "found by OIDC discovery at the issuer, which must be https"},
		{yaml: "security: {auth: {jwt: {issuer: 'https://idp.example'}}}", want: "security.auth.jwt needs security.auth.enabled"},
		{yaml: "security: {auth: {tokens_refresh: 10s, tokens_max_staleness: 5s}}", want: "tokens_max_staleness 5s is below tokens_refresh 10s"},
	} {
		p := filepath.Join(t.TempDir(), "wail.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "127.8.0.1:1": true, "[::1]:7070": true, "localhost:7070": true,
		":7070": false, "0.0.0.0:7070": false, "[::]:7070": false, "10.0.0.5:7070": false, "wail.internal:7070": false, "garbage": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTokensPath(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = "/d"
	if got := c.TokensPath(); got != "/d/tokens.json" {
		t.Errorf("default tokens path %q", got)
	}
	c.Security.Auth.TokensFile = "/etc/wail/tokens.json"
	if got := c.TokensPath(); got != "/etc/wail/tokens.json" {
		t.Errorf("tokens_file %q", got)
	}
}

// TestAllowedHosts: security.allowed_hosts takes host names, domains with
// their subdomains (.example.com) and *; a URL, a port or a pattern is
// refused at the start (it would match no Host and refuse every request
// by that name).
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	if _, err := Load(write(t, "security:\n  allowed_hosts: [\"wail.internal\", \".corp.example\", \"*\"]\n")); err != nil {
		t.Errorf("hosts: %v", err)
	}
	for _, bad := range []string{"", ".", "..x", "http://wail.internal", "wail.internal:8080", "*.corp.example", "[::1]", "a b"} {
		if _, err := Load(write(t, "security:\n  allowed_hosts: [\""+bad+"\"]\n")); err == nil || !strings.Contains(err.Error(), "is not a host name") {
			t.Errorf("%q: %v, want refused", bad, err)
		}
	}
}
