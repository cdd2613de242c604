package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestClientsRenewExpiringJWT: JWTs expire, and the server ends a stream
// whose JWT did (unauthenticated). A Go client given the token as a file
// (Options.TokenFile, what a Kubernetes projected token or an agent
// renews) reads it again when it changes, and a consumer whose stream was
// ended so reconnects once with the renewed token and goes on; so does a
// producer. (Options.Token was fixed: the consumer failed for good at the
// first expiry, and a renewed token needed a new client.)
func TestClientsRenewExpiringJWT(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwksFile, tokenFile := filepath.Join(dir, "jwks.json"), filepath.Join(dir, "token")
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(jwksFile, set, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(exp time.Time) {
		t.Helper()
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "app", Issuer: "https://idp", Expiry: jwt.NewNumericDate(exp)}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		tmp := tokenFile + ".tmp" // replaced whole, as agents do
		if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokenFile); err != nil {
			t.Fatal(err)
		}
	}
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 1}}
		c.Security.ReloadInterval = 20 * time.Millisecond
		c.Security.Auth = config.Auth{Enabled: true, Grants: []config.Grant{{Principal: "jwt:app", Allow: []string{"produce:t", "consume:t"}}},
			JWT: config.JWT{JWKSFile: jwksFile, Issuer: "https://idp", Leeway: time.Millisecond, Refresh: 20 * time.Millisecond}}
	})
	first := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second) // exp has whole seconds
	issue(first)

	o := client.Options{Addr: url, TokenFile: tokenFile, H2C: true}
	c, err := client.Dial(o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.NewProducer(o, client.ProducerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ended []error // the streams' ends the consumer reconnected after
	cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", From: "beginning",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, OnReconnect: func(err error, _ int) { ended = append(ended, err) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	write := func(k string) {
		t.Helper()
		if _, err := p.Write(ctx, &wailv1.Mutation{Table: "t", Key: []byte(k), Value: []byte("v")}); err != nil {
			t.Fatalf("write %s: %v", k, err)
		}
		m, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("the event of %s: %v", k, err)
		}
		if got := string(m.Event.GetKey()); got != k {
			t.Fatalf("event of key %q, want %q", got, k)
		}
	}
	write("before")
	issue(first.Add(time.Hour)) // renewed before the first expires
	time.Sleep(time.Until(first) + 200*time.Millisecond)
	for i := range 3 {
		write(fmt.Sprintf("after-%d", i))
	}
	if len(ended) == 0 || connect.CodeOf(ended[0]) != connect.CodeUnauthenticated {
		t.Fatalf("the consumer reconnected after %v; want once, after its stream ended unauthenticated (the first JWT expired)", ended)
	}
	if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("unary"), Value: []byte("v")})); err != nil {
		t.Fatalf("a unary call with the renewed token: %v", err)
	}
}
