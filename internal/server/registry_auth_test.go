package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// TestRegistryBasicAuth: on /registry (and only there) a Basic
// Authorization header whose password is a wail token is that token's
// principal, with the user empty or the token's name; anything else in it
// is Unauthenticated (401), and a principal lacking the permission is
// refused (403), as with a bearer token.
func TestRegistryBasicAuth(t *testing.T) {
	t.Parallel()
	s := startSecured(t, nil)
	c := s.dial(t, client.Options{CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile})
	basic := func(userPass string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass)) }
	admin, produce := s.tokens["admin"], s.tokens["produce"]
	const schema = `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\";\nmessage M { int64 a = 1; }\n"}`
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"admin's token, its name", http.MethodPost, "/registry/subjects/m-value/versions", basic("admin:" + admin), schema, http.StatusOK},
		{"admin's token, no user", http.MethodGet, "/registry/subjects", basic(":" + admin), "", http.StatusOK},
		{"a reader reads", http.MethodGet, "/registry/subjects", basic("produce:" + produce), "", http.StatusOK},
		{"a reader cannot register", http.MethodPost, "/registry/subjects/m-value/versions", basic("produce:" + produce), schema, http.StatusForbidden},
		{"another token's name", http.MethodGet, "/registry/subjects", basic("admin:" + produce), "", http.StatusUnauthorized},
		{"a wrong token", http.MethodGet, "/registry/subjects", basic("admin:wail_0123456789abcdef_" + strings.Repeat("A", 43)), "", http.StatusUnauthorized},
		{"a revoked token", http.MethodGet, "/registry/subjects", basic("revoked:" + s.tokens["revoked"]), "", http.StatusUnauthorized},
		{"no password", http.MethodGet, "/registry/subjects", basic("admin"), "", http.StatusUnauthorized},
		{"not base64", http.MethodGet, "/registry/subjects", "Basic !!!", "", http.StatusUnauthorized},
		{"Basic off the registry", http.MethodGet, "/metrics", basic("admin:" + admin), "", http.StatusUnauthorized},
		{"Basic on an RPC", http.MethodPost, "/wail.v1.AdminService/ListTables", basic("admin:" + admin), "{}", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(tc.method, c.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", tc.auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s %s: %d, want %d", tc.name, tc.method, tc.path, resp.StatusCode, tc.want)
		}
		// Confluent clients parse the registry's refusals as its error
		// body; elsewhere a refusal is plain text.
		registry := strings.HasPrefix(tc.path, "/registry")
		if wantCode := map[int]int{http.StatusUnauthorized: 401, http.StatusForbidden: 40301}[tc.want]; wantCode != 0 && registry &&
			(derr != nil || e.Code != wantCode || e.Message == "" || resp.Header.Get("Content-Type") != "application/vnd.schemaregistry.v1+json") {
			t.Errorf("%s: refusal body %+v (%v), content type %q; want the registry's error body, code %d", tc.name, e, derr, resp.Header.Get("Content-Type"), wantCode)
		}
		if tc.want >= 400 && tc.path == "/metrics" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: refusal off the registry has content type %q, want text/plain", tc.name, resp.Header.Get("Content-Type"))
		}
		if tc.want == http.StatusUnauthorized && strings.HasPrefix(tc.path, "/registry") &&
			!strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), "Basic") {
			t.Errorf("%s: the registry's 401 does not offer Basic: %q", tc.name, resp.Header.Values("WWW-Authenticate"))
		}
	}
}

// TestRegistryBasicAuthPython: confluent-kafka's SchemaRegistryClient,
// which sends only Basic auth (basic.auth.user.info = name:token),
// registers and reads with wail tokens over TLS, and is refused with a
// read-only, a wrong or another token's (testdata/registry_basic_auth.py).
func TestRegistryBasicAuthPython(t *testing.T) {
	t.Parallel()
	if err := exec.Command("python3", "-c", "import confluent_kafka.schema_registry").Run(); err != nil {
		servicetest.Missing(t, "python3 with confluent-kafka is missing: pip install 'confluent-kafka[protobuf,schemaregistry]'")
	}
	s := startSecured(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "testdata/registry_basic_auth.py", s.url+"/registry", s.ca.File,
		"admin:"+s.tokens["admin"], "produce:"+s.tokens["produce"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all steps passed") {
		t.Fatalf("confluent-kafka client: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "ok: "); n != 6 {
		t.Fatalf("%d steps ran, want 6:\n%s", n, out)
	}
}
