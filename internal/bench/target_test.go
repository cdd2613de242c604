package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestTargetSecured: the bench drives a server with TLS and auth through
// Options.Conn: it creates its tables, writes, and scrapes /metrics with
// the token the README says it needs.
func TestTargetSecured(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "wail-bench")
	pair := ca.Server(t, "server")
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	gs, err := auth.ParseGrants([]string{"admin:bench_*", "produce:bench_*", "consume:bench_*", "metrics"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tf.Create("bench", gs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(tokens); err != nil {
		t.Fatal(err)
	}
	url := servertest.Start(t, func(c *config.Config) {
		c.Security.TLS = config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: tokens}
	})
	o := &Options{Addr: url, Conn: client.Options{CAFile: ca.File, Token: tok}, Concurrency: 2}
	tgt, err := openTarget(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.stop()
	ctx := context.Background()
	if _, err := tgt.createTables(ctx, tableNames(1), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "bench_0", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	if _, err := newScraper(tgt.control, tgt.base, tableNames(1)).scrape(ctx); err != nil {
		t.Fatalf("scrape /metrics with the token: %v", err)
	}
	// Without the token, the same target is refused.
	o.Conn.Token = ""
	anon, err := openTarget(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.createTables(ctx, tableNames(1), 2); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("without a token: %v, want unauthenticated", err)
	}
}
