package server_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestRebindingHealthDetailHidden: with auth off, /healthz answers any
// Host (a probe may name the server as it likes), but a page of a site
// whose name its DNS pointed at wail's address (DNS rebinding) reads its
// answer too: the conditions, which name the store's and brokers' hosts,
// tables, sinks' endpoints and errors, went to it whole. A request naming
// a host the port does not answer to now gets the state, its status code
// unchanged, and how many conditions are hidden; one by a name it answers
// to still gets them all. The same on security.metrics_listen's port,
// which has no auth whatever security.auth says; its /metrics answers any
// Host (scrapers name it as they like: a private interface, numbers).
func TestRebindingHealthDetailHidden(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	srv, base := servertest.StartServer(t, func(c *config.Config) { c.Security.MetricsListen = metricsAddr })
	const secret = "db-primary.internal.example:5432"
	srv.Health().Set("test/secret", health.Degraded, "cannot reach "+secret, "fix it")
	get := func(url, host string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, port := range []struct{ name, base string }{{"API port", base}, {"metrics port", "http://" + metricsAddr}} {
		_, p, _ := net.SplitHostPort(strings.TrimPrefix(port.base, "http://"))
		for _, tc := range []struct {
			host  string
			shown bool
		}{{"evil.example:" + p, false}, {"127.0.0.1.evil.example", false}, {"localhost:" + p, true}, {"127.0.0.1:" + p, true}} {
			code, body := get(port.base+"/healthz", tc.host)
			if code != http.StatusOK || !strings.HasPrefix(body, "degraded") {
				t.Errorf("%s, Host %s: /healthz %d %q; want 200, degraded", port.name, tc.host, code, body)
			}
			if got := strings.Contains(body, secret); got != tc.shown {
				t.Errorf("%s, Host %s: /healthz shows the conditions: %v, want %v: %q", port.name, tc.host, got, tc.shown, body)
			}
			if !tc.shown && !strings.Contains(body, "security.allowed_hosts") {
				t.Errorf("%s, Host %s: /healthz %q; want it to say how to see them", port.name, tc.host, body)
			}
			code, body = get(port.base+"/metrics", tc.host)
			want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[tc.shown]
			if port.name == "metrics port" {
				want = http.StatusOK
			}
			if code != want {
				t.Errorf("%s, Host %s: /metrics %d %.200q; want %d", port.name, tc.host, code, body, want)
			}
		}
	}
}
