package api

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// TestRebindingHostRefused: with auth off, a request whose Host is a name
// wail does not answer to is refused 403 before any handler runs, on every
// path but /healthz: a page of a site whose name its DNS re-pointed at
// wail's address (DNS rebinding) is, to the browser, of that site's own
// origin, so neither Origin nor Sec-Fetch-Site tells it from the console's
// pages, and it could drop tables, write rows or tail events. Hosts that
// are localhost (or under .localhost), IP addresses, listen's host and
// security.allowed_hosts pass, at any port; "*" lets any host through; a
// request without Host (HTTP/1.0) is no browser's and passes. With auth
// on, no host is refused (a browser sends no token by itself), nor over
// TLS (the browser checks wail's certificate against the attacker's name).
func TestRebindingHostRefused(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }
	guard := func(auth bool, listen string, allowed ...string) http.Handler {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Listen = listen
		cfg.Security.Auth.Enabled = auth
		cfg.Security.AllowedHosts = allowed
		g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return g.Middleware(http.HandlerFunc(ok))
	}
	open := guard(false, "127.0.0.1:7070")
	named := guard(false, "wail.internal:7070", "ops.example", ".corp.example")
	any := guard(false, "0.0.0.0:7070", "*")
	anyIP := guard(false, ":7070") // listen names no host
	authOn := guard(true, "127.0.0.1:7070")
	drop := wailv1connect.AdminServiceDropTableProcedure
	for _, tc := range []struct {
		name, host, path string
		h                http.Handler
		want             int
	}{
		{"a rebinding page's tail", "evil.example:7070", "/console/api/tail?table=t", open, 403},
		{"a rebinding page's drop", "evil.example:7070", drop, open, 403},
		{"a rebinding page's registry", "evil.example", "/schema-registry/mode", open, 403},
		{"a rebinding page's metrics", "evil.example", "/metrics", open, 403},
		{"a rebinding page's console page", "evil.example", "/console/", open, 403},
		{"a name ending in localhost", "evil-localhost:7070", drop, open, 403},
		{"a name with a loopback prefix", "127.0.0.1.evil.example", drop, open, 403},
		{"a name under an allowed one", "x.ops.example", drop, named, 403},
		{"a name ending in an allowed domain, not under it", "evilcorp.example", drop, named, 403},
		{"an empty name (listen names no host)", ":7070", drop, anyIP, 403},
		{"healthz", "evil.example", "/healthz", open, 418},
		{"localhost", "localhost:7070", drop, open, 418},
		{"localhost, upper case, trailing dot", "LocalHost.:7070", drop, open, 418},
		{"under .localhost", "wail.localhost:7070", drop, open, 418},
		{"IPv4", "127.0.0.1:7070", drop, open, 418},
		{"another IPv4 (a LAN address)", "10.1.2.3:7070", drop, open, 418},
		{"IPv6", "[::1]:7070", drop, open, 418},
		{"IPv6, no port", "[::1]", drop, open, 418},
		{"no port", "localhost", drop, open, 418},
		{"no Host (HTTP/1.0)", "", drop, open, 418},
		{"listen's host", "wail.internal:7070", drop, named, 418},
		{"an allowed host", "OPS.example:443", "/console/api/tail", named, 418},
		{"a domain's subdomain", "a.b.corp.example", drop, named, 418},
		{"the domain itself", "corp.example", drop, named, 418},
		{"any host allowed", "evil.example", drop, any, 418},
		{"auth on", "evil.example", drop, authOn, 418},
		{"over TLS (the browser checked the certificate against the name)", "evil.example", drop, open, 418},
	} {
		req := httptest.NewRequest(http.MethodPost, "http://x"+tc.path, strings.NewReader("{}"))
		req.Host = tc.host
		if strings.HasPrefix(tc.name, "over TLS") {
			req.TLS = &tls.ConnectionState{}
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: Host %q, %s: %d %s, want %d", tc.name, tc.host, tc.path, rec.Code, rec.Body, tc.want)
			continue
		}
		if tc.want == 403 && !strings.Contains(rec.Body.String(), "security.allowed_hosts") {
			t.Errorf("%s: refusal %q does not say what to do", tc.name, rec.Body)
		}
		if tc.want == 403 && tc.path == drop && !strings.Contains(rec.Body.String(), `"code":"permission_denied"`) {
			t.Errorf("%s: refusal of an RPC %q, want a Connect error (permission_denied)", tc.name, rec.Body)
		}
	}
}

// TestHealthDetailByHost: with auth off, /healthz shows its conditions
// only to a request naming the server by a name it answers to (listen's
// host, security.metrics_listen's, localhost, an IP address) or over TLS;
// a DNS-rebinding page's (another name, plain HTTP) gets the state alone,
// on the API port and the metrics port alike.
func TestHealthDetailByHost(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:7070"
	cfg.Security.MetricsListen = "metrics.internal:9090"
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host string
		tls, shown bool
	}{
		{"another name", "evil.example:7070", false, false},
		{"another name over TLS", "evil.example:7070", true, true},
		{"metrics_listen's host", "metrics.internal:9090", false, true},
		{"localhost", "localhost:9090", false, true},
		{"an IP address", "10.1.2.3:9090", false, true},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://x/healthz", nil)
		req.Host = tc.host
		if tc.tls {
			req.TLS = &tls.ConnectionState{}
		}
		for _, detail := range []struct {
			port string
			f    func(*http.Request) (bool, string)
		}{{"API port", g.HealthDetail}, {"metrics port", g.MetricsHealthDetail}} {
			ok, hidden := detail.f(req)
			if ok != tc.shown || (ok != (hidden == "")) {
				t.Errorf("%s, %s (Host %s): shown %v (%q), want %v", detail.port, tc.name, tc.host, ok, hidden, tc.shown)
			}
		}
	}
}
