package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/server"
)

// keySetServer serves a JWT key set, counting its reads; a test makes it
// fail (500) or hang (until the request is cut).
type keySetServer struct {
	mu          sync.Mutex
	set         []byte
	reads       int
	fail, hang  bool
	hangStarted chan struct{}
}

func (k *keySetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.reads++
	fail, hang, set := k.fail, k.hang, k.set
	if hang && k.hangStarted != nil {
		close(k.hangStarted)
		k.hangStarted = nil
	}
	k.mu.Unlock()
	switch {
	case hang:
		<-r.Context().Done()
	case fail:
		http.Error(w, "down", http.StatusInternalServerError)
	default:
		_, _ = w.Write(set)
	}
}

func (k *keySetServer) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reads
}

// TestJWKSRefreshLoop: the server reads the JWT key set every
// security.auth.jwt.refresh in a loop of its own. A read that fails keeps
// the last good keys (a JWT they verify still works) and makes /healthz
// degraded with an action, cleared once a read works again; shutdown
// finishes with a read in flight that never answers (it is cut), and no
// read happens after it.
func TestJWKSRefreshLoop(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks := &keySetServer{}
	ks.set, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	jwks := httptest.NewServer(ks)
	defer jwks.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "writer", Audience: jwt.Audience{"wail"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}

	const refresh = 20 * time.Millisecond
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	cfg.Security.Auth = config.Auth{Enabled: true, Grants: []config.Grant{{Principal: "jwt:writer", Allow: []string{"produce:t"}}},
		JWT: config.JWT{JWKSURL: jwks.URL, Audience: "wail", Refresh: refresh, FetchTimeout: time.Hour, RefetchInterval: time.Hour}}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
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
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("a minute passed before %s", what)
			}
		}
	}
	waitCode(t, url, tok, 0)
	first := ks.count()
	waitFor("the key set was read again by the loop", func() bool { return ks.count() >= first+3 })

	ks.mu.Lock()
	ks.fail = true
	ks.mu.Unlock()
	waitFor("/healthz turned degraded", func() bool {
		c, ok := jwksCondition(srv)
		return ok && c.State == health.Degraded
	})
	c, _ := jwksCondition(srv)
	if !strings.Contains(c.Reason, "500") || !strings.Contains(c.Action, "security.auth.jwt") {
		t.Fatalf("degraded without the cause or an action: %+v", c)
	}
	if err := putWith(t, url, tok); err != nil {
		t.Fatalf("a JWT of the last good key set, while the key set cannot be read: %v", err)
	}
	ks.mu.Lock()
	ks.fail = false
	ks.mu.Unlock()
	waitFor("/healthz cleared", func() bool { _, ok := jwksCondition(srv); return !ok })

	hanging := make(chan struct{})
	ks.mu.Lock()
	ks.hang, ks.hangStarted = true, hanging
	ks.mu.Unlock()
	select {
	case <-hanging:
	case <-time.After(time.Minute):
		t.Fatal("no read of the key set in a minute")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("shutdown did not finish with a key set read in flight (fetch_timeout 1h)")
	}
	n := ks.count()
	time.Sleep(10 * refresh)
	if got := ks.count(); got != n {
		t.Fatalf("the key set was read %d times after shutdown", got-n)
	}
}

func jwksCondition(srv *server.Server) (health.Condition, bool) {
	for _, c := range srv.Health().Report().Conditions {
		if c.Component == "jwks" {
			return c, true
		}
	}
	return health.Condition{}, false
}
