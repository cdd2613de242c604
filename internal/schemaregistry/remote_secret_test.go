package schemaregistry

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRemoteErrorsHideURLPassword: with credentials in the registry's URL
// (schema_registry.url https://user:password@host), the errors a Remote
// returns, which reach API callers (a typed table's create or write),
// name the registry without its password: a refusal, a failure of the
// registry, an unreachable one.
func TestRemoteErrorsHideURLPassword(t *testing.T) {
	answer := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct{ name, url string }{
		{"not found", answer(404, `{"error_code":40401,"message":"Subject 'x' not found."}`)},
		{"server error", answer(500, `{"error_code":50001,"message":"boom"}`)},
		{"credentials refused", answer(401, `{"error_code":401,"message":"Unauthorized"}`)},
		{"unreachable", closed},
	} {
		u := strings.Replace(tc.url, "http://", "http://wail:S3CRETPW@", 1)
		r, err := NewRemote(RemoteOptions{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Versions(t.Context(), "x", false)
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if strings.Contains(err.Error(), "S3CRETPW") {
			t.Errorf("%s: the error shows the registry's password: %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), strings.TrimPrefix(tc.url, "http://")) {
			t.Errorf("%s: the error does not name the registry %s: %v", tc.name, tc.url, err)
		}
	}
}
