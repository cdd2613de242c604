package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestJWTKeySetUnreadableIsUnavailable: a JWT whose kid is not in the key
// set as last read, while the key set cannot be read again (the identity
// provider is down as it rotates its key), cannot be checked now: it is
// refused Unavailable (503 with Retry-After on HTTP endpoints), which
// clients retry, as docs/operations.md said, not Unauthenticated, which
// they take for a bad token and give up on. Once the key set reads, the
// token works; a kid the readable key set lacks is Unauthenticated.
func TestJWTKeySetUnreadableIsUnavailable(t *testing.T) {
	t.Parallel()
	k1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	writeSet := func(keys ...jose.JSONWebKey) {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pub := func(k *ecdsa.PrivateKey, kid string) jose.JSONWebKey {
		return jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}
	}
	writeSet(pub(k1, "k1"))
	const refetch = 10 * time.Millisecond
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.JWT = config.JWT{JWKSFile: jwksFile, RefetchInterval: refetch}
		c.Security.Auth.Grants = append(c.Security.Auth.Grants, config.Grant{Principal: "jwt:alice", Allow: []string{"produce:t", "metrics"}})
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	mint := func(k *ecdsa.PrivateKey, kid string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "alice", Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mux := NewMux()
	svc := Unimplemented()
	svc.Producer = putOK{}
	Mount(mux, svc, g.Options()...)
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()
	c := wailv1connect.NewProducerServiceClient(srv.Client(), srv.URL)
	put := func(bearer string) error {
		req := connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})
		req.Header().Set("Authorization", "Bearer "+bearer)
		_, err := c.Put(context.Background(), req)
		return err
	}
	metrics := func(bearer string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The identity provider is down and has rotated to k2.
	if err := os.WriteFile(jwksFile, []byte("<html>502 Bad Gateway</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * refetch) // the next unknown kid reads the key set again
	rotated := mint(k2, "k2")
	if err := put(rotated); connect.CodeOf(err) != connect.CodeUnavailable || strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Errorf("a new kid while the key set cannot be read: %v, want unavailable (without the read's error)", err)
	}
	time.Sleep(2 * refetch)
	if resp := metrics(rotated); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /metrics with a new kid while the key set cannot be read: %d (Retry-After %q), want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := put(mint(k1, "k1")); err != nil {
		t.Errorf("a kid of the last good key set: %v", err)
	}
	// It reads again, with k2.
	writeSet(pub(k1, "k1"), pub(k2, "k2"))
	time.Sleep(2 * refetch)
	if err := put(rotated); err != nil {
		t.Errorf("the new kid once the key set reads: %v", err)
	}
	time.Sleep(2 * refetch)
	if err := put(mint(k2, "junk")); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a kid the readable key set lacks: %v, want unauthenticated", err)
	}
}
