package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// TestExternalRegistryPassesOnTheSchemaAPIOnly: with an external registry
// (schema_registry.url), wail passes reads on with its own credentials
// for it, to any caller with a grant (a read of the registry needs one,
// any). Only the schema API's reads are passed on: a GET of the
// registry's other APIs (Confluent's DEK registry, whose shared keys'
// material it returns, its exporters, whose configurations hold the
// credentials of other registries) was passed on too, so that a token
// with read:orders read them as wail.
func TestExternalRegistryPassesOnTheSchemaAPIOnly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	srv, reader, admin := guardedExternalRegistry(t, config.SchemaRegistry{URL: upstream.URL, Username: "wail", Password: "secret", Timeout: 5 * time.Second})
	do := func(tok, method, path string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"schema":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	passed := []string{
		"/registry/",
		"/registry/subjects",
		"/registry/subjects/orders-value/versions/latest",
		"/registry/subjects/orders-value/metadata",
		"/registry/schemas/ids/1",
		"/registry/schemas/types",
		"/registry/config",
		"/registry/config/orders-value",
		"/registry/mode",
		"/registry/contexts",
	}
	for _, p := range passed {
		if code := do(reader, http.MethodGet, p); code != http.StatusOK {
			t.Errorf("GET %s by a read:orders token: %d, want 200 (passed on)", p, code)
		}
	}
	for _, p := range []string{
		"/registry/dek-registry/v1/keks",
		"/registry/dek-registry/v1/keks/k/deks/orders-value",
		"/registry/%64ek-registry/v1/keks",
		"/registry/exporters",
		"/registry/exporters/e/config",
		"/registry/importers",
	} {
		for _, tok := range []string{reader, admin} {
			if code := do(tok, http.MethodGet, p); code != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404 (not passed on)", p, code)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(passed) {
		t.Fatalf("the external registry got %q; want the schema API's reads alone", got)
	}
}
