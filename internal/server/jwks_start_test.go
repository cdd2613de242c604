package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/server"
)

// TestJWKSUnreadableAtStart: an identity provider whose key set cannot be
// read at the start does not stop wail from starting (bearer tokens and
// client certificates work): JWTs are answered unavailable, never
// accepted, and /healthz says no key set was read, until one is; then
// JWTs verify and the condition clears. A jwks_file that cannot be read
// (a local file: the configuration's) still stops the start.
func TestJWKSUnreadableAtStart(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks := &keySetServer{fail: true}
	ks.set, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	jwks := httptest.NewServer(ks)
	defer jwks.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwtTok, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "writer", Audience: jwt.Audience{"wail"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	cfg.Security.Auth = config.Auth{Enabled: true, Grants: []config.Grant{{Principal: "jwt:writer", Allow: []string{"produce:t"}}},
		JWT: config.JWT{JWKSURL: jwks.URL, Audience: "wail", Refresh: 20 * time.Millisecond, RefetchInterval: 10 * time.Millisecond}}
	var tf auth.TokenFile
	g, _ := auth.ParseGrants([]string{"produce:t"})
	bearer, _, err := tf.Create("app", g, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(cfg.TokensPath()); err != nil {
		t.Fatal(err)
	}

	// A jwks_file that cannot be read stops the start.
	fileCfg := cfg
	fileCfg.Security.Auth.JWT.JWKSURL, fileCfg.Security.Auth.JWT.JWKSFile = "", filepath.Join(t.TempDir(), "none.json")
	if _, err := server.New(fileCfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Fatalf("start with a jwks_file that is not there: %v; want an error naming it", err)
	}

	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start while the identity provider's key set cannot be read: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	defer func() {
		cancel()
		<-done
	}()
	if err := putWith(t, url, bearer); err != nil {
		t.Fatalf("a bearer token while the key set cannot be read: %v", err)
	}
	if err := putWith(t, url, jwtTok); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("a JWT before any key set was read: %v; want unavailable", err)
	}
	c, ok := jwksCondition(srv)
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, "no JWT key set has been read") ||
		!strings.Contains(c.Reason, "500") || !strings.Contains(c.Action, "security.auth.jwt") {
		t.Fatalf("jwks condition %+v (raised %v); want degraded, saying no key set was read, why, and what to check", c, ok)
	}
	ks.mu.Lock()
	ks.fail = false
	ks.mu.Unlock()
	waitCode(t, url, jwtTok, 0)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := jwksCondition(srv); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the jwks condition stayed a minute after the key set was read")
		}
	}
}
