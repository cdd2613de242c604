package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestExternalRegistryDotSegments: a path with a dot segment, encoded
// or not, is neither taken for a read by the guard nor passed on to the
// external registry (schema_registry.url). "POST /registry/compatibility/
// %2E%2E/subjects/x/versions" passed as a compatibility test (any grant)
// and reached the registry, with wail's credentials, as
// "/compatibility/../subjects/x/versions": a registration by a caller
// that may only read, once the registry resolved the segment.
func TestExternalRegistryDotSegments(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer upstream.Close()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	tf := &auth.TokenFile{}
	tok, _, err := tf.Create("reader", []auth.Grant{{Permission: auth.Read, Tables: "orders"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := tf.Create("admin", []auth.Grant{{Permission: auth.Admin, Tables: "*"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(filepath.Join(cfg.DataDir, "tokens.json")); err != nil {
		t.Fatal(err)
	}
	if cfg.TokensPath() != filepath.Join(cfg.DataDir, "tokens.json") {
		t.Fatalf("tokens path %s", cfg.TokensPath())
	}
	g, err := api.NewGuard(&cfg, api.GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := externalReads(config.SchemaRegistry{URL: upstream.URL, Username: "wail", Password: "secret", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mux := api.NewMux()
	mux.Handle(config.SchemaRegistryPath+"/", ext)
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()

	as := func(tok, method, p string) int {
		req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader(`{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message M {}"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	send := func(method, p string) int { return as(tok, method, p) }
	if code := send(http.MethodPost, "/registry/subjects/x/versions"); code != http.StatusForbidden {
		t.Fatalf("a registration by a read:orders token: %d, want 403", code)
	}
	for _, p := range []string{
		"/registry/compatibility/%2E%2E/subjects/x/versions",
		"/registry/compatibility/%2e%2e/subjects/x/versions",
		"/registry/compatibility/subjects/%2E/../x/versions",
		"/registry/compatibility/.%2E/subjects/x/versions",
		"/registry/compatibility/a%2F..%2F..%2Fsubjects%2Fx%2Fversions",
		"/registry/compatibility/a%2f%2e%2e%2f..%2fsubjects/x/versions",
	} {
		if code := send(http.MethodPost, p); code < 400 {
			t.Errorf("POST %s by a read:orders token: %d, want a refusal", p, code)
		}
	}
	if code := send(http.MethodGet, "/registry/subjects/%2E%2E/config"); code < 400 {
		t.Errorf("GET with an encoded dot segment: %d, want a refusal", code)
	}
	// Not passed on, even for an admin (it would leave the registry's
	// base path, or name another resource than the one checked).
	if code := as(admin, http.MethodGet, "/registry/subjects/%2E%2E/config"); code != http.StatusBadRequest {
		t.Errorf("GET with an encoded dot segment by an admin: %d, want 400", code)
	}
	if code := send(http.MethodGet, "/registry/subjects"); code != http.StatusOK {
		t.Errorf("a plain read: %d, want 200 (passed on)", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], "GET /subjects ") {
		t.Fatalf("the external registry got %q; want the plain read alone", got)
	}
}
