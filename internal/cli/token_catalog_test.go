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
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestTokenCommandsCatalog: with --tokens-source catalog, `wail token
// create|ls|revoke` edit the tokens in the catalog of the store of
// --config, which `wail serve --tokens-source catalog` on that store uses:
// the token works, then is refused once revoked.
func TestTokenCommandsCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	conf := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := fmt.Sprintf("store:\n  kind: postgres\n  dsn: %q\ntables:\n  - {name: orders, partitions: 1}\n"+
		"security:\n  auth:\n    enabled: true\n    tokens_refresh: 50ms\n", dsn)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop := runServeLine(t, "wail serve --tokens-source catalog", []string{"serve", "--config", conf, "--tokens-source", "catalog"},
		filepath.Join(t.TempDir(), "data"))
	defer stop()
	code, out, errOut := runEnv(ctx, nil, "token", "create", "writer", "--grant", "produce:orders", "--config", conf, "--tokens-source", "catalog")
	if code != 0 || !strings.Contains(errOut, "it is shown once") {
		t.Fatalf("token create: code %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if code, out, _ := runEnv(ctx, nil, "token", "ls", "--config", conf, "--tokens-source", "catalog"); code != 0 || !strings.Contains(out, "writer") || !strings.Contains(out, "produce:orders") {
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
	if code, out, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--config", conf, "--tokens-source", "catalog"); code != 0 || !strings.Contains(out, "revoked 1") {
		t.Fatalf("token revoke: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the revoked token to be refused", func() bool { return connect.CodeOf(put()) == connect.CodeUnauthenticated })
	if code, _, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--config", conf, "--tokens-source", "catalog"); code != 1 || !strings.Contains(errOut, "no unrevoked token") {
		t.Fatalf("a second revoke: %d %s", code, errOut)
	}
}

// TestTokensSourceRefused: --tokens-source takes file or catalog, and
// catalog only on a store that processes share.
func TestTokensSourceRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--auth", "--tokens-source", "catalog"}, 1,
			"tokens_source catalog needs a store that processes share"},
		{[]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--auth", "--tokens-source", "vault"}, 1,
			`security.auth.tokens_source "vault" is neither file nor catalog`},
		{[]string{"token", "ls", "--data-dir", dir, "--tokens-source", "vault"}, 2, `--tokens-source "vault" is neither file nor catalog`},
	} {
		code, _, errOut := runEnv(ctx, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("wail %q: exit %d, %s; want exit %d saying %q", tc.args, code, errOut, tc.code, tc.wantErr)
		}
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
