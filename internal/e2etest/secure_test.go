package e2etest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestInvariantsAcrossKill9Secured is TestInvariantsAcrossKill9 with TLS
// and tokens on: `wail serve --auth --tls-cert --tls-key`, writers with a
// produce-only token, the table made and watched with an admin one. The
// invariants hold on what the data dir holds; the restarted server still
// refuses a writer without a token and the writer's token on admin work.
func TestInvariantsAcrossKill9Secured(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	t.Parallel()
	bin := buildWail(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "wail-e2e")
	pair := ca.Server(t, "wail")
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	writerTok, _, err := tf.Create("writer", []auth.Grant{{Permission: auth.Produce, Tables: table}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	adminTok, _, err := tf.Create("ops", []auth.Grant{{Permission: auth.Admin, Tables: "*"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(tokensFile); err != nil {
		t.Fatal(err)
	}
	serve := func() *child {
		return startWail(t, bin, "serve", "--data-dir", dir, "--auth", "--tokens-file", tokensFile,
			"--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile)
	}
	dial := func(url, token string) *client.Client {
		c, err := client.Dial(client.Options{Addr: url, CAFile: ca.File, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := serve()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := "https://" + srv.addr
	if _, err := dial(url, adminTok).Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: table, Partitions: 4, VisibilityWindowMs: 2000,
	})); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clients := map[string]*client.Client{} // one per server URL: connections are kept
	w := &remoteWriters{producer: func(url string) wailv1connect.ProducerServiceClient {
		mu.Lock()
		defer mu.Unlock()
		if clients[url] == nil {
			clients[url] = dial(url, writerTok)
		}
		return clients[url].Producer
	}}
	w.url.Store(&url)
	srv = w.killTwice(ctx, t, srv, "https://", serve)
	// A writer without a token, and the writer's token on admin work, are
	// refused.
	anon := dial("https://"+srv.addr, "")
	if _, err := anon.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: []byte("x"), Value: []byte("x")})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a write without a token: %v, want unauthenticated", err)
	}
	if _, err := dial("https://"+srv.addr, writerTok).Admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: table})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("a drop with the writer's token: %v, want permission_denied", err)
	}
	waitResolvedBy(t, ctx, dial("https://"+srv.addr, adminTok).Admin)
	srv.terminate(t)
	t.Logf("%d writes acknowledged, %d attempted, over TLS with tokens", w.acked.Load(), len(w.attempts))
	checkDataDir(t, ctx, dir, w)
}
