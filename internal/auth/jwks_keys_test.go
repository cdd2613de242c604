package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestJWKSSkipsKeysItCannotUse: a key set that holds, besides the signing
// key, a key wail cannot use (an X25519 encryption key, a curve or key
// type it does not know, a certificate chain that does not parse) is
// read, its other keys used (RFC 7517 section 5: such keys SHOULD be
// ignored). One such key refused the whole set: wail did not start, or,
// once the identity provider added one, kept its last good keys until it
// rotated its signing key, and then refused every JWT.
func TestJWKSSkipsKeysItCannotUse(t *testing.T) {
	rs, es, _ := newKeys(t)
	pub := func(k signingKey) string {
		b, err := json.Marshal(k.public())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	x := strings.Repeat("A", 43) // 32 zero bytes
	for _, tc := range []struct{ name, key, kid, why string }{
		{"x25519 encryption key", `{"kty":"OKP","crv":"X25519","use":"enc","kid":"enc1","x":"` + x + `"}`, "enc1", "unsupported"},
		{"unknown curve", `{"kty":"EC","crv":"secp256k1","kid":"k256","x":"` + x + `","y":"` + x + `"}`, "k256", "unsupported"},
		{"unknown key type", `{"kty":"PQ","kid":"pq1","pub":"AAAA"}`, "pq1", "unsupported"},
		{"certificate chain that does not parse", strings.Replace(pub(es), `"kid":"ec1"`, `"kid":"x5c1","x5c":["AAAA"]`, 1), "x5c1", "x5c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body atomic.Value
			body.Store(`{"keys":[` + pub(rs) + `,` + tc.key + `]}`)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(body.Load().(string)))
			}))
			defer srv.Close()
			var mu sync.Mutex
			var told error
			v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Hour,
				OnError: func(err error) { mu.Lock(); told = err; mu.Unlock() }})
			if err != nil {
				t.Fatalf("a key set with a usable key was refused: %v", err)
			}
			claims := map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}
			if p, _, err := v.Verify(sign(t, rs, claims)); err != nil || p.Name != "bob" {
				t.Fatalf("the signing key's token: %v, %v", p, err)
			}
			// A token naming the key it skipped says why it is not used.
			other := signingKey{tc.kid, es.alg, es.priv}
			if _, _, err := v.Verify(sign(t, other, claims)); err == nil || !strings.Contains(err.Error(), "cannot be used") ||
				!strings.Contains(err.Error(), tc.why) {
				t.Fatalf("a token of the skipped key: %v, want it refused saying why (%q)", err, tc.why)
			}
			// The identity provider rotates: the new key is taken up
			// although the unusable one stays.
			body.Store(`{"keys":[` + pub(es) + `,` + tc.key + `]}`)
			if err := v.refresh(context.Background(), false); err != nil { // Run's
				t.Fatalf("the key set's refresh: %v", err)
			}
			if _, _, err := v.Verify(sign(t, es, claims)); err != nil {
				t.Fatalf("after rotation, the new key's token: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if told != nil {
				t.Fatalf("the key set was reported unreadable: %v", told)
			}
		})
	}
	// Nothing usable at all is still an error, naming why.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[{"kty":"OKP","crv":"X25519","kid":"enc1","x":"` + x + `"}]}`))
	}))
	defer srv.Close()
	if _, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL}); err == nil || !strings.Contains(err.Error(), "enc1") {
		t.Fatalf("a key set without a usable key: %v, want an error naming the key skipped", err)
	}
}

// TestJWKSSameKidForTwoKeys: two keys of a key set may share a kid (RFC
// 7517 section 4.5: keys of different types that are alternatives, or a
// signing and an encryption key); a token names its key by kid and alg.
// A kid that named more than one key refused every token of it, saying
// it was not in the key set.
func TestJWKSSameKidForTwoKeys(t *testing.T) {
	rs, es, _ := newKeys(t)
	other, _, _ := newKeys(t)
	rs.kid, es.kid, other.kid = "k", "k", "k"
	enc := es.public()
	enc.Use, enc.Algorithm = "enc", "ECDH-ES"
	claims := map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}
	for _, tc := range []struct {
		name string
		keys []jose.JSONWebKey
		ok   []signingKey // their tokens verify
		no   []signingKey // theirs do not
	}{
		{"an RSA and an EC key", []jose.JSONWebKey{rs.public(), es.public()}, []signingKey{rs, es}, []signingKey{other}},
		{"a signing and an encryption key", []jose.JSONWebKey{rs.public(), enc}, []signingKey{rs}, []signingKey{es, other}},
		{"without alg or use", []jose.JSONWebKey{{Key: rs.priv.Public(), KeyID: "k"}, {Key: es.priv.Public(), KeyID: "k"}}, []signingKey{rs, es}, []signingKey{other}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := &jwks{}
			set.set(tc.keys...)
			srv := httptest.NewServer(set)
			defer srv.Close()
			v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.ok {
				tok := sign(t, k, claims)
				if p, _, err := v.Verify(tok); err != nil || p.Name != "bob" {
					t.Errorf("the %s token of kid k: %v, %v", k.alg, p, err)
				}
				if err := v.Reverify(tok); err != nil {
					t.Errorf("the %s token of kid k, checked again: %v", k.alg, err)
				}
			}
			for _, k := range tc.no {
				if _, _, err := v.Verify(sign(t, k, claims)); err == nil || !errors.Is(err, ErrJWT) {
					t.Errorf("a %s token of kid k signed by a key not in the set: %v, want refused", k.alg, err)
				}
			}
		})
	}
}

// TestJWKSURLPasswordHidden: a jwks_url with a password in it (a key set
// behind basic auth) is named without it when it cannot be read: the
// error goes to the log and /healthz, whose detail the metrics
// listener's scrapers read.
func TestJWKSURLPasswordHidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://wail:s3cret@", 1) + "/jwks"
	_, err := NewJWTVerifier(JWTConfig{JWKSURL: u})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "/jwks") {
		t.Fatalf("NewJWTVerifier = %v, want an error naming the URL without its password", err)
	}
}

// TestJWKSFileWritableByOthers: a jwks_file that users other than its
// owner may write is refused, as the tokens file is: whoever writes it
// adds a key and signs JWTs for any principal. At the start it fails;
// changed later, the last good key set stays in use, reported.
func TestJWKSFileWritableByOthers(t *testing.T) {
	rs, _, _ := newKeys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rs.public()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o644, true}, {0o664, false}, {0o646, false}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := NewJWTVerifier(JWTConfig{JWKSFile: path})
		if tc.ok != (err == nil) || err != nil && (!errors.Is(err, ErrJWKSFileMode) || !strings.Contains(err.Error(), "chmod 644")) {
			t.Errorf("mode %o: %v", tc.mode, err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told error
	v, err := NewJWTVerifier(JWTConfig{JWKSFile: path, OnError: func(err error) { mu.Lock(); told = err; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := v.refresh(context.Background(), false); !errors.Is(err, ErrJWKSFileMode) {
		t.Fatalf("refresh of a key set file writable by others: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(told, ErrJWKSFileMode) {
		t.Fatalf("told %v", told)
	}
	if _, _, err := v.Verify(sign(t, rs, map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})); err != nil {
		t.Fatalf("the last good key set: %v", err)
	}
}
