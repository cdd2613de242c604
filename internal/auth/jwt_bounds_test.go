package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestJWTTimeBounds pins the leeway at its exact edges, on a clock of
// whole seconds (the claims' resolution): exp, nbf and iat are accepted
// up to Leeway past them and refused one second beyond; and the expiry
// returned is the token's exp, which a stream is checked against again.
func TestJWTTimeBounds(t *testing.T) {
	rs, _, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	const leeway = 30 * time.Second
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, Leeway: leeway, RefetchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	v.now = func() time.Time { return now }
	claims := func(k string, at time.Time) map[string]any {
		c := map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
		c[k] = at.Unix()
		return c
	}
	for _, tc := range []struct {
		name string
		c    map[string]any
		want string // "": accepted
	}{
		{"exp at the leeway's edge", claims("exp", now.Add(-leeway)), ""},
		{"exp a second beyond", claims("exp", now.Add(-leeway-time.Second)), "expired at"},
		{"nbf at the leeway's edge", claims("nbf", now.Add(leeway)), ""},
		{"nbf a second beyond", claims("nbf", now.Add(leeway+time.Second)), "not valid before"},
		{"iat at the leeway's edge", claims("iat", now.Add(leeway)), ""},
		{"iat a second beyond", claims("iat", now.Add(leeway+time.Second)), "issued in the future"},
	} {
		p, exp, err := v.Verify(sign(t, rs, tc.c))
		switch {
		case tc.want == "" && (err != nil || p.Name != "alice"):
			t.Errorf("%s: Verify = %v, %v; want jwt:alice", tc.name, p, err)
		case tc.want == "" && exp.Unix() != tc.c["exp"].(int64):
			t.Errorf("%s: expiry %v, want the token's exp %d", tc.name, exp, tc.c["exp"])
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Verify = %v, %v; want a refusal saying %q", tc.name, p, err, tc.want)
		}
	}
}

// TestJWKSRedirects: a key set's URL may redirect twice on its own host
// and scheme; a third redirect, or one to another scheme on the same host
// (https to http would read the key set in clear), is refused.
func TestJWKSRedirects(t *testing.T) {
	rs, _, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	mux := http.NewServeMux()
	mux.Handle("/keys", set)
	mux.Handle("/r1", http.RedirectHandler("/keys", http.StatusFound))
	mux.Handle("/r2", http.RedirectHandler("/r1", http.StatusFound))
	mux.Handle("/r3", http.RedirectHandler("/r2", http.StatusFound))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.Handle("/tls", http.RedirectHandler(strings.Replace(srv.URL, "http:", "https:", 1)+"/keys", http.StatusFound))
	if _, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL + "/r2"}); err != nil {
		t.Fatalf("two redirects on the same host: %v", err)
	}
	for _, path := range []string{"/r3", "/tls"} {
		if _, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL + path}); err == nil || !strings.Contains(err.Error(), "only redirects to the same host") {
			t.Errorf("%s: %v, want the redirect refused", path, err)
		}
	}
}

// TestJWTKeyNotForSignatures: a key of the set published for encryption
// (use "enc") does not check a signature, even one it would verify.
func TestJWTKeyNotForSignatures(t *testing.T) {
	rs, _, _ := newKeys(t)
	enc := rs.public()
	enc.Use = "enc"
	set := &jwks{}
	set.set(enc)
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, rs, map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	if _, _, err := v.Verify(tok); err == nil || !strings.Contains(err.Error(), "not for signatures") {
		t.Fatalf("a token checked by an encryption key: %v, want it refused", err)
	}
}

// TestCheckKeySetURL: https anywhere; http only on a loopback host, by
// name or address; never a URL without a host.
func TestCheckKeySetURL(t *testing.T) {
	for _, u := range []string{"https://idp.example/keys", "http://localhost:8080/keys", "http://127.0.0.1/keys", "http://[::1]/keys"} {
		if err := CheckKeySetURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://idp.example/keys", "http://10.0.0.1/keys", "http://[2001:db8::1]/keys", "https:///keys", "ftp://localhost/keys"} {
		if err := CheckKeySetURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}
