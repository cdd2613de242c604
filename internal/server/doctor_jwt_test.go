package server_test

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

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// TestDoctorJWT: doctor reads the JWT key set as the server would at its
// start, and fails where every JWT would be refused (the key set cannot
// be read, or holds no key for signatures) — the server itself starts
// then, with `jwks` degraded, so only doctor tells before clients do.
func TestDoctorJWT(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	encryption, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "e1", Use: "enc"})
	if err != nil {
		t.Fatal(err)
	}
	unknownCurve := `{"kty":"EC","crv":"P-999","x":"AA","y":"AA","kid":"odd"}`
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }
	file := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "jwks.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	served := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(set(string(signing))))
	}))
	defer served.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing answers there any more

	for _, tc := range []struct {
		name  string
		jwt   func(t *testing.T) config.JWT
		want  []string
		fails bool
	}{
		{"a file with a key for signatures and two left out", func(t *testing.T) config.JWT {
			return config.JWT{JWKSFile: file(t, set(string(signing), string(encryption), unknownCurve)), Audience: "wail"}
		}, []string{"jwt          ok (key set ", "jwks.json: 1 key(s) for signatures; 2 left out: kid \"e1\": not for signatures (use \"enc\"); kid \"odd\": "}, false},
		{"a URL", func(*testing.T) config.JWT {
			return config.JWT{JWKSURL: served.URL + "/jwks", Audience: "wail"}
		}, []string{"jwt          ok (key set " + served.URL + "/jwks: 1 key(s) for signatures)"}, false},
		{"no audience", func(*testing.T) config.JWT {
			return config.JWT{JWKSURL: served.URL + "/jwks"}
		}, []string{"jwt          ok (key set", "jwt          WARN: "}, false},
		{"an identity provider that does not answer", func(*testing.T) config.JWT {
			return config.JWT{JWKSURL: gone.URL + "/jwks", Audience: "wail"}
		}, []string{"jwt          FAIL: JWKS " + gone.URL + "/jwks: ", "every JWT would be refused (unavailable) until it can be read"}, true},
		{"only an encryption key", func(t *testing.T) config.JWT {
			return config.JWT{JWKSFile: file(t, set(string(encryption))), Audience: "wail"}
		}, []string{"jwt          FAIL: the key set ", "holds no key for signatures; 1 left out: kid \"e1\""}, true},
		{"no usable key", func(t *testing.T) config.JWT {
			return config.JWT{JWKSFile: file(t, set(unknownCurve)), Audience: "wail"}
		}, []string{"jwt          FAIL: JWKS ", "it holds no key that can be used"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Security.Auth.Enabled = true
			cfg.Security.Auth.JWT = tc.jwt(t)
			var out strings.Builder
			err := server.Doctor(context.Background(), cfg, nil, "", 0, &out)
			failedJWT := err != nil && strings.Contains(err.Error(), "jwt")
			if failedJWT != tc.fails {
				t.Errorf("doctor: %v, want the jwt check failed: %v\n%s", err, tc.fails, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q in:\n%s", w, out.String())
				}
			}
		})
	}
}
