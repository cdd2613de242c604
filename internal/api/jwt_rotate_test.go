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

// jwtIssuer signs JWTs with keys it names and writes the JWKS file that
// holds the public ones.
type jwtIssuer struct {
	t    testing.TB
	path string
	keys map[string]*ecdsa.PrivateKey
}

func newJWTIssuer(t testing.TB, kids ...string) *jwtIssuer {
	t.Helper()
	is := &jwtIssuer{t: t, path: filepath.Join(t.TempDir(), "jwks.json"), keys: map[string]*ecdsa.PrivateKey{}}
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		is.keys[kid] = k
	}
	is.publish(kids...)
	return is
}

// publish writes the JWKS file with the public keys of kids only.
func (is *jwtIssuer) publish(kids ...string) {
	is.t.Helper()
	var ks jose.JSONWebKeySet
	for _, kid := range kids {
		ks.Keys = append(ks.Keys, jose.JSONWebKey{Key: is.keys[kid].Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	b, _ := json.Marshal(ks)
	tmp := is.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		is.t.Fatal(err)
	}
	if err := os.Rename(tmp, is.path); err != nil {
		is.t.Fatal(err)
	}
}

// mint is a JWT of sub signed by kid's key, valid for an hour.
func (is *jwtIssuer) mint(kid, sub string) string {
	is.t.Helper()
	return is.mintUntil(kid, sub, time.Now().Add(time.Hour))
}

// mintUntil is a JWT of sub signed by kid's key whose exp is exp.
func (is *jwtIssuer) mintUntil(kid, sub string, exp time.Time) string {
	is.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.keys[kid], KeyID: kid}}, nil)
	if err != nil {
		is.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: sub, Issuer: "https://idp",
		Expiry: jwt.NewNumericDate(exp)}).Serialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

// TestRotatedKeyEndsJWTStream: a Subscribe stream opened with a JWT whose
// signing key is then removed from the JWKS (rotated out after a
// compromise) ends Unauthenticated, saying so, once the key set is read
// again; a stream whose JWT's key stays goes on. Before, a JWT's stream
// lived until the token's exp whatever became of its key.
func TestRotatedKeyEndsJWTStream(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	is := newJWTIssuer(t, "old", "new")
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.ReloadInterval = interval
		c.Security.Auth.JWT = config.JWT{JWKSFile: is.path, Issuer: "https://idp", Refresh: interval}
		c.Security.Auth.Grants = append(c.Security.Auth.Grants, config.Grant{Principal: "jwt:alice", Allow: []string{"consume:t"}})
	}, "reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go g.RunJWKS(ctx)

	open := func(bearer string) (ticking, *connect.ServerStreamForClient[wailv1.SubscribeResponse]) {
		svc := ticking{tick: make(chan struct{})}
		mux := NewMux()
		Mount(mux, Services{Admin: wailv1connect.UnimplementedAdminServiceHandler{}, Events: svc}, g.Options()...)
		srv := httptest.NewUnstartedServer(g.Middleware(mux))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		req := connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"})
		req.Header().Set("Authorization", "Bearer "+bearer)
		go func() { svc.tick <- struct{}{} }() // the answer's headers come with the first event
		stream, err := wailv1connect.NewEventServiceClient(srv.Client(), srv.URL).Subscribe(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stream.Close() })
		if !stream.Receive() {
			t.Fatalf("the first event: %v", stream.Err())
		}
		return svc, stream
	}
	oldSvc, oldStream := open(is.mint("old", "alice"))
	newSvc, newStream := open(is.mint("new", "alice"))

	is.publish("new") // "old" rotated out
	for n := g.jwt.Fetches() + 2; g.jwt.Fetches() < n; {
		if ctx.Err() != nil {
			t.Fatal("the key set was not read again")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * interval) // past the streams' next recheck

	select {
	case newSvc.tick <- struct{}{}:
	case <-ctx.Done():
		t.Fatal("the stream of the kept key ended")
	}
	if !newStream.Receive() {
		t.Fatalf("the stream of the kept key: %v", newStream.Err())
	}
	offer(oldSvc.tick) // the stream sends an event, unless its watch ended it first
	if oldStream.Receive() {
		t.Fatal("an event reached a JWT whose key left the key set")
	}
	err := oldStream.Err()
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("the stream ended with %v, want unauthenticated naming the key", err)
	}
	if testing.Verbose() {
		t.Log(err)
	}
}
