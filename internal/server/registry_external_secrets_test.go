package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// TestExternalRegistryURLCredentialsHidden: a schema_registry.url with
// credentials in it (https://user:password@host): what wail
// says of the registry to its callers (the refusal of a change, here to a
// principal that may only read one table) does not show the password.
func TestExternalRegistryURLCredentialsHidden(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer upstream.Close()
	withCreds := strings.Replace(upstream.URL, "http://", "http://wail:S3CRETPW@", 1)
	srv, reader, admin := guardedExternalRegistry(t, config.SchemaRegistry{URL: withCreds, Timeout: 5 * time.Second})
	for _, tc := range []struct{ name, tok, method, path string }{
		// A lookup for the guard (any grant), a registration once decoded.
		{"reader, encoded slash", reader, http.MethodPost, "/registry/subjects/x%2Fversions"},
		{"admin", admin, http.MethodDelete, "/registry/subjects/x"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tc.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %s %s: %d %s, want 405", tc.name, tc.method, tc.path, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "S3CRETPW") {
			t.Errorf("%s: the refusal shows the registry's password: %s", tc.name, body)
		}
	}
}
