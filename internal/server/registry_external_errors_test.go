package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// TestExternalRegistryRefusalsAreJSON: what wail answers itself in place
// of the external registry (a path outside its schema API, a dot segment,
// a method override, a change) is the registry's error body, JSON that
// its clients parse, with nosniff: the path outside the API was put in
// the message Go-quoted (%q), which is not JSON for a control character
// or bytes not UTF-8 in it ("/registry/%7F": \x7f), so a client failed
// parsing the refusal instead of saying it.
func TestExternalRegistryRefusalsAreJSON(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer upstream.Close()
	srv, _, admin := guardedExternalRegistry(t, config.SchemaRegistry{URL: upstream.URL, Timeout: 5 * time.Second})
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/registry/%7F/x", 404},
		{"GET", "/registry/%FF%FE", 404},
		{"GET", "/registry/dek-registry/v1/keks", 404},
		{"GET", "/registry/subjects/%2E%2E/x", 400},
		{"GET", "/registry/subjects?_method=DELETE", 400},
		{"DELETE", "/registry/subjects/x", 405},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.code || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s %s: %d %q (%v); want %d with the registry's error body", tc.method, tc.path, resp.StatusCode, body, err, tc.code)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.schemaregistry.v1+json") {
			t.Errorf("%s %s: Content-Type %q, X-Content-Type-Options %q", tc.method, tc.path, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
		}
	}
}
