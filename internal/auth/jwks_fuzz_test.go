package auth

import (
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
			if len(ks) != 1 || !sameKey(ks[0].Key, keys[i]) {
				t.Fatalf("token %d verified with key %#v, not the one that signed it", i, ks)
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
