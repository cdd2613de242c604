package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
)

// TLS and access control of the API port (config.Security, package api):
// the checks at start, the guard, and the metrics listener.

const (
	authComponent = "auth"
	jwksComponent = "jwks"
	// a tokens file removed while running (the auth component says why a
	// file that is there does not load)
	tokensFileComponent = "tokens_file"
	tlsComponent        = "tls"
	// the client certificates of schema_registry.tls and sinks.tls
	registryTLSComponent = "schema_registry_tls"
	sinksTLSComponent    = "sinks_tls"
)

// openSecurity refuses an exposed API without TLS and auth, reads the
// tokens file and the TLS files: a start with a bad file fails at once,
// saying which. Later changes that do not load keep the last good files
// and report degraded.
func (s *Server) openSecurity() error {
	if err := s.cfg.CheckExposure(); err != nil {
		return err
	}
	sec := s.cfg.Security
	if !config.Loopback(s.cfg.Listen) && !(sec.TLS.Enabled() && sec.Auth.Enabled) {
		s.logger.Warn("security.insecure: the API is served to other hosts without TLS or authentication; anyone who reaches it may write, read and drop tables",
			"listen", s.cfg.Listen, "tls", sec.TLS.Enabled(), "auth", sec.Auth.Enabled)
	}
	if j := sec.Auth.JWT; sec.Auth.Enabled && j.Enabled() && j.Audience == "" {
		s.logger.Warn("security.auth.jwt: "+noAudience, "action", "set security.auth.jwt.audience to the audience the identity provider puts in wail's tokens (aud)")
	}
	var err error
	onTokens := s.reloadProblem(authComponent, "the tokens file "+s.cfg.TokensPath(), "fix the file (`wail token ls` reads it)")
	if s.cfg.Security.Auth.TokensInCatalog() {
		onTokens = s.catalogTokensProblem()
	}
	s.guard, err = api.NewGuard(&s.cfg, api.GuardOptions{Logger: s.logger, OnTokensError: onTokens,
		OnJWKSError: s.jwksProblem(), OnTokensGone: s.tokensGoneProblem()})
	if err != nil {
		return err
	}
	if t := s.cfg.Security.TLS; t.Enabled() {
		var notAfter atomic.Int64
		var clientCAs func() *api.ClientTrust
		var keyMu sync.Mutex
		keyWarned := "" // the key file's mode problem last warned of
		s.tls, clientCAs, err = api.ServerTLS(t, s.cfg.Security.ReloadInterval,
			s.reloadProblem(tlsComponent, "the TLS files", "check that the certificate and key files match and are PEM"),
			func(c *x509.Certificate) {
				notAfter.Store(c.NotAfter.Unix())
				// At the start and at every renewal: a renewal tool
				// may write the new key readable by all.
				keyMu.Lock()
				defer keyMu.Unlock()
				if p := keyModeProblem(t.KeyFile); p != keyWarned {
					if keyWarned = p; p != "" {
						s.logger.Warn("security.tls.key_file: the TLS private key is not kept secret: "+p, "key_file", t.KeyFile)
					}
				}
			})
		if err != nil {
			return err
		}
		s.guard.UseClientCAs(clientCAs)
		s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wail_tls_certificate_expiry_timestamp_seconds",
			Help: "When the API port's certificate in use expires (Unix time); alert well before: wail_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400.",
		}, func() float64 { return float64(notAfter.Load()) }))
	}
	return nil
}

// noAudience is what JWTs accepted without security.auth.jwt.audience
// let in.
const noAudience = "no audience is configured: a JWT the issuer minted for another of its services is accepted as well as one minted for wail"

// keyModeProblem says what is wrong with the mode of the TLS key file
// ("": nothing, or it cannot be read: loading it says so).
func keyModeProblem(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return auth.SecretModeProblem(path, fi)
}

// guarded wraps the routes of mux in the request budgets (budget.go) and
// the guard's authentication (package api).
func (s *Server) guarded(mux *api.Mux) http.Handler {
	s.routes = mux.Patterns()
	return newGuard(&s.cfg, s.bodies, s.guard.Middleware(mux))
}

// reloadProblem reports, as degraded on /healthz and in the log, a file
// that changed but does not load.
// It logs a problem once, not at every check that finds it again.
func (s *Server) reloadProblem(component, what, action string) func(error) {
	var mu sync.Mutex
	last := ""
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			s.health.Clear(component)
			s.logger.Info("reloaded " + what)
			last = ""
			return
		}
		s.health.Set(component, health.Degraded, fmt.Sprintf("%s changed but does not load; the last good one stays in use: %v", what, err), action)
		if err.Error() != last {
			s.logger.Warn(what+" changed but does not load; the last good one stays in use", "err", err, "action", action)
			last = err.Error()
		}
	}
}

// tokensGoneProblem reports, as unhealthy on /healthz and once in the
// log, a tokens file removed while the server runs: every bearer token
// is refused until it is back.
func (s *Server) tokensGoneProblem() func(error) {
	path := s.cfg.TokensPath()
	action := "put the tokens file back (from a backup) at " + path + ", or make new tokens with `wail token create` (clients need them); it is read again within security.reload_interval"
	return func(err error) {
		if err == nil {
			s.health.Clear(tokensFileComponent)
			s.logger.Info("the tokens file is back; bearer tokens are accepted again", "tokens_file", path)
			return
		}
		s.health.Set(tokensFileComponent, health.Unhealthy, err.Error(), action)
		s.logger.Error("the tokens file was removed; every bearer token is refused", "tokens_file", path, "action", action)
	}
}

// jwksProblem reports, as degraded on /healthz and once in the log, a JWT
// key set (security.auth.jwt) that cannot be read: the last good one
// stays in use, so JWTs signed by a key it lacks are refused.
func (s *Server) jwksProblem() func(error) {
	var mu sync.Mutex
	failing := false
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			if failing {
				s.health.Clear(jwksComponent)
				s.logger.Info("the JWT key set reads again")
			}
			failing = false
			return
		}
		action := "check security.auth.jwt.jwks_url (or jwks_file, or the issuer's discovery document) and the identity provider; docs/operations.md \"JWTs refused\""
		what := "the JWT key set cannot be read; the last good one stays in use"
		if errors.Is(err, auth.ErrNoKeySet) { // the error says every JWT is refused
			what = "the JWT key set cannot be read"
		}
		s.health.Set(jwksComponent, health.Degraded, what+": "+err.Error(), action)
		if !failing {
			s.logger.Warn(what, "err", err, "action", action)
		}
		failing = true
	}
}

// catalogTokensProblem reports a catalog whose tokens cannot be read
// (security.auth.tokens_source catalog), on /healthz and once per state in
// the log: degraded while the last tokens read stay in use (up to
// tokens_max_staleness), unhealthy once bearer tokens are refused (none
// read since the start, or the last read is older than that).
func (s *Server) catalogTokensProblem() func(error) {
	var mu sync.Mutex
	state := health.OK
	a := s.cfg.Security.Auth
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			if state != health.OK {
				s.health.Clear(authComponent)
				s.logger.Info("the bearer tokens are read from the catalog again")
			}
			state = health.OK
			return
		}
		if errors.Is(err, context.Canceled) {
			return // the process stops: the read was cut, not refused
		}
		action := "check the store (`wail doctor`); `wail token ls` reads the same entry"
		was := state
		if errors.Is(err, auth.ErrTokensStale) {
			state = health.Unhealthy
			s.health.Set(authComponent, state, "bearer tokens are refused: "+err.Error(), action)
			if was != state {
				s.logger.Error("bearer tokens are refused: they cannot be read from the store's catalog", "err", err,
					"tokens_max_staleness", a.Staleness(), "action", action)
			}
			return
		}
		state = health.Degraded
		s.health.Set(authComponent, state, fmt.Sprintf("the bearer tokens cannot be read from the store's catalog; the last read stays in use for up to security.auth.tokens_max_staleness %s, then bearer tokens are refused: %v", a.Staleness(), err), action)
		if was != state {
			s.logger.Warn("cannot read the bearer tokens from the store's catalog; the last read stays in use until tokens_max_staleness, then bearer tokens are refused",
				"err", err, "tokens_max_staleness", a.Staleness(), "action", action)
		}
	}
}

// serveTLS serves hs on ln, with TLS when it is configured.
func (s *Server) serveTLS(hs *http.Server, ln net.Listener) error {
	if s.tls == nil {
		return hs.Serve(ln)
	}
	return hs.Serve(tls.NewListener(ln, s.tls))
}

// serveMetrics serves /metrics and /healthz on security.metrics_listen,
// without TLS or auth, until the returned stop is called.
func (s *Server) serveMetrics() (stop func(), err error) {
	addr := s.cfg.Security.MetricsListen
	if addr == "" {
		return func() {}, nil
	}
	ln, err := Listen(addr, "security.metrics_listen")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", s.health.HandlerFor(s.guard.MetricsHealthDetail))
	// As many connections as the API port takes, counted apart; past
	// them, connections are answered and closed within seconds.
	limit := newConnLimit(nil, s.cfg.API.MaxConnections, s.cfg.API.MaxConnectionsPerClient)
	hs := &http.Server{Handler: limit.wrap(mux), ReadHeaderTimeout: s.cfg.API.ReadHeaderTimeout, IdleTimeout: s.cfg.API.IdleTimeout,
		WriteTimeout: s.cfg.API.WriteTimeout, MaxHeaderBytes: s.cfg.API.MaxHeaderBytes, ConnContext: connContext,
		ErrorLog: s.httpLog.stdLogger()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(limit.listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("the metrics listener stopped; /metrics answers on the API port only", "addr", addr, "err", err)
		}
	}()
	return func() {
		_ = hs.Close() // scrapes are short: nothing to drain
		<-done
	}, nil
}

// certWarnBefore is how long before its expiry doctor warns of a
// certificate.
const certWarnBefore = 14 * 24 * time.Hour

// doctorSecurity checks what the configuration says of TLS and auth: an
// exposed API refused at start, the certificate and key (and how long they
// last), the client CA, the tokens file.
func doctorSecurity(cfg config.Config, w io.Writer, fail func(check, format string, args ...any)) {
	if err := cfg.CheckExposure(); err != nil {
		fail("security", "%v", err)
	}
	if t := cfg.Security.TLS; t.Enabled() {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		switch {
		case err != nil:
			fail("tls", "certificate %s and key %s: %v", t.CertFile, t.KeyFile, err)
		case time.Now().After(pair.Leaf.NotAfter):
			fail("tls", "certificate %s (%s) expired at %s: renew it (no restart needed)", t.CertFile, pair.Leaf.Subject, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
		default:
			left := time.Until(pair.Leaf.NotAfter).Round(time.Hour)
			note := ""
			if left < certWarnBefore {
				note = "; WARN: renew it soon"
			}
			fmt.Fprintf(w, "tls          ok (certificate %s, expires in %s%s)\n", pair.Leaf.Subject, left, note)
		}
		if p := keyModeProblem(t.KeyFile); p != "" {
			fmt.Fprintf(w, "tls          WARN: the private key is not kept secret: %s\n", p)
		}
		if t.ClientCAFile != "" {
			b, err := os.ReadFile(t.ClientCAFile)
			if err != nil || !x509.NewCertPool().AppendCertsFromPEM(b) {
				fail("tls", "client CA %s: not a readable PEM certificate file (%v)", t.ClientCAFile, err)
			}
		}
		for _, f := range []string{t.ClientCAFile, t.CRLFile} {
			if f == "" {
				continue
			}
			if fh, err := auth.OpenChecked(f, api.ErrTLSFileMode, 0o644); errors.Is(err, api.ErrTLSFileMode) {
				fail("tls", "%v", err)
			} else if err == nil {
				fh.Close()
			}
		}
	}
	if a := cfg.Security.Auth; a.Enabled && a.JWT.Enabled() {
		doctorJWT(a.JWT, w, fail)
	}
	if a := cfg.Security.Auth; a.Enabled && a.TokensInCatalog() {
		fmt.Fprintf(w, "auth         ok (tokens in the store's catalog, entry %s, read every %s; `wail token ls --config` lists them; %d configured grants)\n",
			auth.TokensEntry, a.Refresh(), len(a.Grants))
	} else if a.Enabled {
		tf, err := auth.ReadTokenFile(cfg.TokensPath())
		if err != nil {
			fail("auth", "%v", err)
			return
		}
		active := 0
		for _, e := range tf.Tokens {
			if e.Revoked == nil {
				active++
			}
		}
		fmt.Fprintf(w, "auth         ok (tokens file %s: %d active, %d revoked; %d configured grants)\n",
			cfg.TokensPath(), active, len(tf.Tokens)-active, len(a.Grants))
		if active == 0 && len(a.Grants) == 0 {
			fmt.Fprintf(w, "auth         WARN: no token and no grant: every request but /healthz is refused (`wail token create`)\n")
		}
	}
}

// OpenTokenStore opens the store of cfg for `wail token` with
// security.auth.tokens_source catalog: the tokens entry of its catalog,
// and what closes the store.
func OpenTokenStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (auth.TokenStore, func() error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	st, err := openStore(ctx, cfg, logger, seams{})
	if err != nil {
		return nil, nil, err
	}
	return auth.CatalogTokens(st), st.Close, nil
}

// doctorJWT reads the JWT key set as the server would at its start: a
// key set wail cannot read (the identity provider down, a wrong
// jwks_url or issuer) or that holds no key for signatures makes every
// JWT refused, which the server only says once it runs (degraded `jwks`).
func doctorJWT(j config.JWT, w io.Writer, fail func(check, format string, args ...any)) {
	v, err := auth.NewJWTVerifier(api.JWTConfig(j))
	if err != nil {
		fail("jwt", "%v: every JWT would be refused (unavailable) until it can be read; check security.auth.jwt (jwks_url, jwks_file, issuer) "+
			"and the identity provider (curl -s the URL from this host)", err)
	} else {
		ks := v.KeySet()
		left := ""
		if len(ks.Left) > 0 {
			left = fmt.Sprintf("; %d left out: %s", len(ks.Left), strings.Join(ks.Left, "; "))
		}
		if ks.Signing == 0 {
			fail("jwt", "the key set %s holds no key for signatures%s: every JWT would be refused", ks.Source, left)
		} else {
			fmt.Fprintf(w, "jwt          ok (key set %s: %d key(s) for signatures%s)\n", ks.Source, ks.Signing, left)
		}
	}
	if j.Audience == "" {
		fmt.Fprintf(w, "jwt          WARN: %s; set security.auth.jwt.audience\n", noAudience)
	}
}
