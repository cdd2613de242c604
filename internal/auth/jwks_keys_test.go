package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
