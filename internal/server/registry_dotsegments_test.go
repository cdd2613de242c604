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

	srv, tok, admin := guardedExternalRegistry(t, config.SchemaRegistry{URL: upstream.URL, Username: "wail", Password: "secret", Timeout: 5 * time.Second})

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

// TestExternalRegistryPathParameters: a segment that is a dot segment
// once its ";parameters" are removed ("..;", ".;x") is one: Tomcat,
// Spring and older Jetty (under many registries and the proxies before
// them) strip path parameters and then resolve "..", so "POST
// /registry/compatibility/..;/subjects/x/versions", a compatibility test
// for wail's guard (any grant), would be a registration with wail's
// credentials there. It is refused, not passed on.
func TestExternalRegistryPathParameters(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer upstream.Close()
	srv, reader, _ := guardedExternalRegistry(t, config.SchemaRegistry{URL: upstream.URL, Username: "wail", Password: "secret", Timeout: 5 * time.Second})
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/registry/compatibility/..;/subjects/x/versions"},
		{http.MethodPost, "/registry/compatibility/..;x=1/subjects/x/versions"},
		{http.MethodPost, "/registry/compatibility/%2E%2E;/subjects/x/versions"},
		{http.MethodPost, "/registry/compatibility/subjects/.;/..;/..;/subjects/x/versions"},
		{http.MethodGet, "/registry/subjects/..;/config"},
		{http.MethodPost, "/registry/compatibility/..%5Csubjects%5Cx/versions"}, // a backslash is a slash to some
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"schema":"syntax = \"proto3\"; message M {}"}`))
		req.Header.Set("Authorization", "Bearer "+reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s %s by a read:orders token: %d, want a refusal", tc.method, tc.path, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("the external registry got %q; want nothing", got)
	}
}

// guardedExternalRegistry serves, behind the guard (auth on), the
// external registry's reads (externalReads of c) at /registry, and
// returns the server and two tokens: one with read:orders, one with
// admin:*.
func guardedExternalRegistry(t *testing.T, c config.SchemaRegistry) (srv *httptest.Server, reader, admin string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	tf := &auth.TokenFile{}
	reader, _, err := tf.Create("reader", []auth.Grant{{Permission: auth.Read, Tables: "orders"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err = tf.Create("admin", []auth.Grant{{Permission: auth.Admin, Tables: "*"}}, time.Now())
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
	ext, err := externalReads(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := api.NewMux()
	mux.Handle(config.SchemaRegistryPath+"/", ext)
	srv = httptest.NewServer(g.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv, reader, admin
}

// TestExternalRegistryMethodOverride: a read that asks, in a header or a
// query parameter, for another method is refused, not passed on: a
// registry, or a gateway before it, that honours X-HTTP-Method-Override
// (Google's front ends, Jersey or Spring with their override filters)
// would take "POST /compatibility/..." with "X-HTTP-Method-Override:
// DELETE", a compatibility test for wail's guard (any grant), for a
// deletion made with wail's credentials.
func TestExternalRegistryMethodOverride(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer upstream.Close()
	srv, reader, _ := guardedExternalRegistry(t, config.SchemaRegistry{URL: upstream.URL, Username: "wail", Password: "secret", Timeout: 5 * time.Second})
	for _, tc := range []struct{ method, path, header string }{
		{http.MethodPost, "/registry/compatibility/subjects/x/versions", "X-HTTP-Method-Override"},
		{http.MethodPost, "/registry/subjects/x", "X-HTTP-Method"},
		{http.MethodGet, "/registry/subjects/x/versions", "X-Method-Override"},
		{http.MethodPost, "/registry/compatibility/subjects/x/versions?_method=DELETE", ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"schema":"syntax = \"proto3\"; message M {}"}`))
		req.Header.Set("Authorization", "Bearer "+reader)
		req.Header.Set("Content-Type", "application/json")
		if tc.header != "" {
			req.Header.Set(tc.header, "DELETE")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s with %s by a read:orders token: %d, want 400", tc.method, tc.path, tc.header, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("the external registry got %q; want nothing", got)
	}
}
