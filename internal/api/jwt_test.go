package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
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

// TestJWTGuard: a bearer JWT signed by a key of the configured JWKS is the
// principal jwt:<sub> with that principal's grants, through the real
// middleware, gate and interceptor; a refused one is Unauthenticated with
// the reason, and a wail token still works beside it.
func TestJWTGuard(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	g, tok, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.JWT = config.JWT{JWKSFile: jwksFile, Issuer: "https://idp", Audience: "wail"}
		c.Security.Auth.Grants = append(c.Security.Auth.Grants,
			config.Grant{Principal: "jwt:alice", Allow: []string{"produce:t"}},
			config.Grant{Principal: "jwt:bob", Allow: []string{"read:t"}})
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub, aud string, exp time.Duration) string {
		s, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: sub, Issuer: "https://idp", Audience: jwt.Audience{aud},
			Expiry: jwt.NewNumericDate(time.Now().Add(exp))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mux := NewMux()
	svc := Unimplemented()
	svc.Producer = putOK{}
	Mount(mux, svc, g.Options()...)
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()
	c := wailv1connect.NewProducerServiceClient(srv.Client(), srv.URL)
	for _, tc := range []struct {
		name, bearer string
		code         connect.Code // 0: ok
		msg          string
	}{
		{"jwt with produce", mint("alice", "wail", time.Hour), 0, ""},
		{"jwt without produce", mint("bob", "wail", time.Hour), connect.CodePermissionDenied, "jwt:bob lacks the produce permission"},
		{"jwt of another audience", mint("alice", "other", time.Hour), connect.CodeUnauthenticated, `does not include "wail"`},
		{"expired jwt", mint("alice", "wail", -time.Hour), connect.CodeUnauthenticated, "expired at"},
		{"wail token beside", tok, 0, ""},
	} {
		req := connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})
		req.Header().Set("Authorization", "Bearer "+tc.bearer)
		_, err := c.Put(context.Background(), req)
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code != 0 && (connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.code, tc.msg)
		}
	}
}
