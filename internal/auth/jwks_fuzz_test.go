package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzJWKS: the key set is read from the identity provider (or a file it
// writes): whatever it holds, reading it and verifying tokens against it
// does not panic, a refusal is ErrJWT, and a token verifies only when
// the key set holds the very key that signed it (the public key or the
// private one with it).
func FuzzJWKS(f *testing.F) {
	rs, es, ed := newKeys(f)
	exp := time.Now().Add(24 * time.Hour).Unix()
	keys := []signingKey{rs, es, ed}
	var toks []string
	for _, k := range keys {
		toks = append(toks, sign(f, k, map[string]any{"sub": "svc", "exp": exp}))
	}
	// A token whose kid names rs's key, signed by another RSA key.
	other, _, _ := newKeys(f)
	toks = append(toks, sign(f, other, map[string]any{"sub": "svc", "exp": exp}))
	for _, set := range [][]jose.JSONWebKey{
		{rs.public(), es.public(), ed.public()},
		{es.public()},
		{{Key: rs.priv.Public(), KeyID: "rsa1"}, {Key: []byte("secret"), KeyID: "ec1"}},
		{{Key: es.priv.Public(), KeyID: "rsa1", Algorithm: string(jose.RS256)}},
		{{Key: ed.priv.Public(), KeyID: "rsa1"}, rs.public(), {Key: es.priv.Public(), KeyID: "rsa1"}},
	} {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: set})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"rsa1","n":"AQ","e":"AQ"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"ec1","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","kid":"ed1","crv":"Ed25519","x":""}]}`))
	f.Add([]byte(`{"keys":[null]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, doc []byte) {
		path := filepath.Join(dir, "jwks.json")
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := NewJWTVerifier(JWTConfig{JWKSFile: path, RefetchInterval: time.Hour, MaxBytes: 64 << 10})
		if err != nil {
			return
		}
		for i, tok := range toks {
			p, _, err := v.Verify(tok)
			if err != nil {
				if !errors.Is(err, ErrJWT) {
					t.Fatalf("token %d: error not ErrJWT: %v", i, err)
				}
				continue
			}
			if i >= len(keys) || p.Name != "svc" {
				t.Fatalf("token %d verified as %v", i, p)
			}
			v.mu.Lock()
			ks := v.keys.Key(keys[i].kid)
			v.mu.Unlock()
			if !slices.ContainsFunc(ks, func(k jose.JSONWebKey) bool { return sameKey(k.Key, keys[i]) }) {
				t.Fatalf("token %d verified with keys %#v, none the one that signed it", i, ks)
			}
		}
	})
}

// sameKey reports whether key (from a key set) is k's public key, or k's
// private key.
func sameKey(key any, k signingKey) bool {
	if e, ok := k.priv.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && e.Equal(key) {
		return true
	}
	if e, ok := k.priv.(interface{ Equal(crypto.PrivateKey) bool }); ok && e.Equal(key) {
		return true
	}
	return false
}

// FuzzOIDCDiscovery: the issuer's discovery document comes from the
// network: whatever it holds, reading it does not panic, and a jwks_uri
// it takes is one CheckKeySetURL accepts, from a document naming the
// issuer exactly.
func FuzzOIDCDiscovery(f *testing.F) {
	var doc atomic.Value
	doc.Store([]byte(nil))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(doc.Load().([]byte)) }))
	defer srv.Close()
	for _, s := range []string{
		`{"issuer":"ISSUER","jwks_uri":"https://idp.example/keys"}`,
		`{"issuer":"ISSUER","jwks_uri":"http://127.0.0.1:1/keys"}`,
		`{"issuer":"ISSUER","jwks_uri":"http://idp.example/keys"}`,
		`{"issuer":"ISSUER/","jwks_uri":"https://idp.example/keys"}`,
		`{"issuer":"ISSUER","jwks_uri":"https:///keys"}`,
		`{"issuer":"ISSUER","jwks_uri":""}`,
		`[]`,
	} {
		f.Add([]byte(strings.ReplaceAll(s, "ISSUER", srv.URL)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc.Store(b)
		v := &JWTVerifier{cfg: JWTConfig{Issuer: srv.URL, FetchTimeout: 5 * time.Second, MaxBytes: 64 << 10}, now: time.Now,
			client: srv.Client()}
		if err := v.discover(context.Background()); err != nil {
			return
		}
		var d struct {
			Issuer string `json:"issuer"`
		}
		if err := json.Unmarshal(b, &d); err != nil || d.Issuer != srv.URL {
			t.Fatalf("took a document that does not name the issuer: %q", b)
		}
		if err := CheckKeySetURL(v.jwksURL); err != nil {
			t.Fatalf("took jwks_uri %q: %v", v.jwksURL, err)
		}
	})
}
