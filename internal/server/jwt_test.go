package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wail-cdc/wail/internal/config"
)

// jwtIssuer is a key set file and a key that signs JWTs with it, for the
// matrix's JWT roles.
type jwtIssuer struct {
	file   string
	signer jose.Signer
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtIssuer{file: file, signer: s}
}

// configure accepts the issuer's JWTs (audience wail) and grants
// jwt:reader read:t and consume:t.
func (j *jwtIssuer) configure(c *config.Config) {
	c.Security.Auth.JWT = config.JWT{JWKSFile: j.file, Audience: "wail"}
	c.Security.Auth.Grants = append(c.Security.Auth.Grants, config.Grant{Principal: "jwt:reader", Allow: []string{"read:t", "consume:t"}})
}

func (j *jwtIssuer) mint(t *testing.T, sub string, exp time.Duration) string {
	t.Helper()
	tok, err := jwt.Signed(j.signer).Claims(jwt.Claims{Subject: sub, Audience: jwt.Audience{"wail"},
		Expiry: jwt.NewNumericDate(time.Now().Add(exp))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
