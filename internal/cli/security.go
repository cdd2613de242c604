package cli

import (
	"github.com/spf13/pflag"

	"github.com/wail-cdc/wail/internal/config"
)

// securityFlags are the TLS and auth flags of serve, proxy and resolve
// (config.Security; README "Security").
type securityFlags struct {
	tlsCert, tlsKey, clientCA string
	crlFile                   string
	requireClientCert         bool
	auth, insecure            bool
	tokensFile, tokensSource  string
	metricsListen             string
}

func (f *securityFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain PEM file of the API port; reloaded when it changes (overrides security.tls.cert_file)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key PEM file (overrides security.tls.key_file)")
	fl.StringVar(&f.clientCA, "tls-client-ca", "", "CA PEM file that verifies client certificates: mutual TLS (overrides security.tls.client_ca_file)")
	fl.StringVar(&f.crlFile, "tls-crl", "", "revocation lists (PEM or DER) of the client CAs: the client certificates they list are refused; reloaded when it changes (overrides security.tls.crl_file)")
	fl.BoolVar(&f.requireClientCert, "tls-require-client-cert", false, "refuse connections without a client certificate (overrides security.tls.require_client_cert)")
	fl.BoolVar(&f.auth, "auth", false, "require a bearer token or client certificate with a grant on every request but /healthz (overrides security.auth.enabled)")
	fl.StringVar(&f.tokensFile, "tokens-file", "", "bearer tokens file (overrides security.auth.tokens_file; default tokens.json in the data dir)")
	fl.StringVar(&f.tokensSource, "tokens-source", "", tokensSourceUsage+" (overrides security.auth.tokens_source)")
	fl.BoolVar(&f.insecure, "insecure", false, "allow a listen address other hosts reach without TLS and auth (overrides security.insecure)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve /metrics and /healthz on this host:port too, without TLS or auth (overrides security.metrics_listen)")
}

func (f *securityFlags) apply(fl *pflag.FlagSet, cfg *config.Config) {
	s := &cfg.Security
	for _, o := range []struct {
		flag string
		set  func()
	}{
		{"tls-cert", func() { s.TLS.CertFile = f.tlsCert }},
		{"tls-key", func() { s.TLS.KeyFile = f.tlsKey }},
		{"tls-client-ca", func() { s.TLS.ClientCAFile = f.clientCA }},
		{"tls-require-client-cert", func() { s.TLS.RequireClientCert = f.requireClientCert }},
		{"tls-crl", func() { s.TLS.CRLFile = f.crlFile }},
		{"auth", func() { s.Auth.Enabled = f.auth }},
		{"tokens-file", func() { s.Auth.TokensFile = f.tokensFile }},
		{"tokens-source", func() { s.Auth.TokensSource = f.tokensSource }},
		{"insecure", func() { s.Insecure = f.insecure }},
		{"metrics-listen", func() { s.MetricsListen = f.metricsListen }},
	} {
		if fl.Changed(o.flag) {
			o.set()
		}
	}
}

// tokensSourceUsage is the usage of --tokens-source.
const tokensSourceUsage = "where the bearer tokens are kept: file (security.auth.tokens_file) or catalog " +
	"(the store's catalog, shared by every process on a postgres, mysql or cassandra store)"
