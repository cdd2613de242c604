package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestJWKSRun: Run reads the key set every Refresh (a key added to it is
// found without the unknown-kid read, which RefetchInterval holds back),
// keeps the last good keys when a read fails (told to OnError), and
// returns once its context ends, cutting a read that never answers.
func TestJWKSRun(t *testing.T) {
	rs, es, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	const serve, fail, hang = 0, 1, 2
	var mode atomic.Int32
	hanging := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case hang:
			select {
			case hanging <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		case fail:
			http.Error(w, "down", http.StatusBadGateway)
		default:
			set.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	failed := make(chan error, 1)
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, Refresh: 10 * time.Millisecond, RefetchInterval: time.Hour, FetchTimeout: time.Hour,
		OnError: func(err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	tok := sign(t, es, map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	if _, _, err := v.Verify(tok); err == nil {
		t.Fatal("a key not in the set verified")
	}
	set.set(rs.public(), es.public())
	waitUntil(t, "the loop read the new key", func() bool { _, _, err := v.Verify(tok); return err == nil })

	mode.Store(fail)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "502") {
			t.Fatalf("failed read reported as %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a failed read was not reported")
	}
	if _, _, err := v.Verify(tok); err != nil {
		t.Fatalf("the last good key set was dropped after a failed read: %v", err)
	}

	mode.Store(hang)
	select {
	case <-hanging:
	case <-time.After(time.Minute):
		t.Fatal("no read in a minute")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return once its context ended, with a read in flight (fetch timeout 1h)")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute passed before %s", what)
		}
	}
}

// issuerServer is an OpenID Connect issuer: its discovery document at
// DiscoveryPath (doc, with the server's URL for "ISSUER") and its key set
// at /keys.
func issuerServer(t *testing.T, set *jwks, doc *atomic.Pointer[string]) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc(DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.ReplaceAll(*doc.Load(), "ISSUER", srv.URL)))
	})
	mux.Handle("/keys", set)
	mux.Handle("/other-keys", set)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestOIDCDiscovery: with an issuer and no jwks_url or jwks_file, the key
// set is the jwks_uri of the issuer's discovery document, read again at
// every refresh; a document that does not name the issuer exactly, lacks
// jwks_uri, points to a key set in clear on another host, is too large,
// never answers or is not JSON is refused, saying why.
func TestOIDCDiscovery(t *testing.T) {
	rs, _, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	var doc atomic.Pointer[string]
	good := `{"issuer": "ISSUER", "jwks_uri": "ISSUER/keys", "authorization_endpoint": "ISSUER/auth"}`
	doc.Store(&good)
	srv := issuerServer(t, set, &doc)
	v, err := NewJWTVerifier(JWTConfig{Issuer: srv.URL, Audience: testAudience, Refresh: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"sub": "bob", "iss": srv.URL, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	if p, _, err := v.Verify(sign(t, rs, claims)); err != nil || p.Name != "bob" {
		t.Fatalf("a JWT of the discovered key set: %v %v", p, err)
	}
	claims["iss"] = "https://other.example"
	if _, _, err := v.Verify(sign(t, rs, claims)); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("a JWT of another issuer: %v", err)
	}

	// Every refresh reads the document again: a new jwks_uri is followed.
	moved := `{"issuer": "ISSUER", "jwks_uri": "ISSUER/other-keys"}`
	doc.Store(&moved)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go v.Run(ctx)
	waitUntil(t, "the moved jwks_uri was read", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return strings.HasSuffix(v.jwksURL, "/other-keys")
	})

	cancel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	for _, tc := range []struct {
		name, doc string
		cfg       JWTConfig
		want      string
	}{
		{"another issuer", `{"issuer": "https://idp.example", "jwks_uri": "ISSUER/keys"}`, JWTConfig{}, `names issuer "https://idp.example", not`},
		{"trailing slash", `{"issuer": "ISSUER/", "jwks_uri": "ISSUER/keys"}`, JWTConfig{}, "must be the issuer exactly"},
		{"no jwks_uri", `{"issuer": "ISSUER"}`, JWTConfig{}, "has no jwks_uri"},
		{"jwks_uri in clear", `{"issuer": "ISSUER", "jwks_uri": "http://idp.example/keys"}`, JWTConfig{}, "must be https"},
		{"not JSON", `<html>`, JWTConfig{}, "not a discovery document"},
		{"too large", `{"issuer": "ISSUER", "jwks_uri": "ISSUER/keys", "pad": "` + strings.Repeat("x", 2048) + `"}`, JWTConfig{MaxBytes: 1024}, "larger than 1024 bytes"},
		{"never answers", good, JWTConfig{Issuer: slow.URL, FetchTimeout: 50 * time.Millisecond}, "deadline exceeded"},
		{"no document", good, JWTConfig{Issuer: srv.URL + "/nowhere"}, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.doc
			doc.Store(&d)
			cfg := tc.cfg
			if cfg.Issuer == "" {
				cfg.Issuer = srv.URL
			}
			_, err := NewJWTVerifier(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "OIDC discovery") {
				t.Fatalf("%v, want an OIDC discovery error saying %q", err, tc.want)
			}
		})
	}
}
