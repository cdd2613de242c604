package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestTokenCommandsCatalog: with security.auth.tokens_source catalog in
// --config, `wail token create|ls|revoke` edit the tokens in the store's
// catalog, which a running server on that store uses: the token works,
// then is refused once revoked.
func TestTokenCommandsCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	conf := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := fmt.Sprintf("store:\n  kind: postgres\n  dsn: %q\nsecurity:\n  auth:\n    enabled: true\n    tokens_source: catalog\n    tokens_refresh: 50ms\n", dsn)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.Store, c.Security.Auth = cfg.Store, cfg.Security.Auth
		c.Tables = []config.Table{{Name: "orders", Partitions: 1}}
	})
	code, out, errOut := runEnv(ctx, nil, "token", "create", "writer", "--grant", "produce:orders", "--config", conf)
	if code != 0 || !strings.Contains(errOut, "it is shown once") {
		t.Fatalf("token create: code %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if code, out, _ := runEnv(ctx, nil, "token", "ls", "--config", conf); code != 0 || !strings.Contains(out, "writer") || !strings.Contains(out, "produce:orders") {
		t.Fatalf("token ls: %d %s", code, out)
	}
	c, err := client.Dial(client.Options{Addr: url, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	put := func() error {
		_, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("k"), Value: []byte("v")}))
		return err
	}
	waitFor(t, "the new token to work", func() bool { return put() == nil })
	if code, out, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--config", conf); code != 0 || !strings.Contains(out, "revoked 1") {
		t.Fatalf("token revoke: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the revoked token to be refused", func() bool { return connect.CodeOf(put()) == connect.CodeUnauthenticated })
	if code, _, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--config", conf); code != 1 || !strings.Contains(errOut, "no unrevoked token") {
		t.Fatalf("a second revoke: %d %s", code, errOut)
	}
}

// waitFor waits until ok, a minute at most (the machine may be loaded).
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("waited a minute for %s", what)
}
