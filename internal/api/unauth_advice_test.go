package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnauthenticatedAdvice: the refusal of a bearer token says once what
// to do, and of a JWT on a server that takes none, that it takes none (it
// said "a wail token is wail_ + 16 hex digits ...", and told twice that
// `wail token create` makes one).
func TestUnauthenticatedAdvice(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuard(t) // no security.auth.jwt
	for _, tc := range []struct{ bearer, want string }{
		{"nope", "malformed bearer token"},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "security.auth.jwt"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tc.bearer)
		msg := unauthenticated(g.authenticate(r)).Error()
		if !strings.Contains(msg, tc.want) || strings.Count(msg, "`wail token create` makes one") > 1 {
			t.Errorf("bearer %q: %q, want it saying %q, and once what makes a token", tc.bearer, msg, tc.want)
		}
	}
}
