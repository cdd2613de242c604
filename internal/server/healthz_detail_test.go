package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/health"
)

// TestHealthDetailNeedsMetrics: /healthz stays open with auth on (probes
// carry no credentials), but its conditions name hosts, tables, DSNs'
// hosts and errors. An anonymous caller, or one without the metrics
// permission, gets the state and how many conditions are hidden; a caller
// with it (as /metrics needs) gets them whole. (Every caller that reached
// the port read them.)
func TestHealthDetailNeedsMetrics(t *testing.T) {
	s := startSecured(t, nil)
	const secret = "db-primary.internal.example:5432"
	s.srv.Health().Set("test/secret", health.Degraded, "cannot reach "+secret, "fix it")
	for _, tc := range []struct {
		who   string
		token string
		shown bool
	}{{"anonymous", "", false}, {"consume", s.tokens["consume"], false}, {"admin+metrics", s.tokens["admin"], true}, {"root", s.tokens["root"], true}} {
		c := s.dial(t, client.Options{Token: tc.token})
		for _, accept := range []string{"text/plain", "application/json"} {
			req, err := http.NewRequest(http.MethodGet, c.URL+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", accept)
			resp, err := c.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "degraded") {
				t.Fatalf("%s (%s): %d %s; want 200 and the state", tc.who, accept, resp.StatusCode, body)
			}
			if got := strings.Contains(string(body), secret); got != tc.shown {
				t.Errorf("%s (%s) sees the conditions: %v, want %v: %s", tc.who, accept, got, tc.shown, body)
			}
			if !tc.shown && !strings.Contains(string(body), "metrics permission") {
				t.Errorf("%s (%s): %s; want it to say the detail needs the metrics permission", tc.who, accept, body)
			}
		}
	}
}
