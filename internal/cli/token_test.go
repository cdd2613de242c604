package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// runEnv runs one command line with the environment env.
func runEnv(ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut logbuf.Buffer
	code = run(ctx, envOf(&out, &errOut, env), args)
	return code, out.String(), errOut.String()
}

func envOf(out, errOut *logbuf.Buffer, vars map[string]string) env {
	return env{stdin: strings.NewReader(""), stdout: out, stderr: errOut, getenv: func(k string) string { return vars[k] }}
}

// TestTokenCommands: tokens made with `wail token create` work against a
// server with TLS and auth through --ca and --token-file (or WAIL_TOKEN),
// within their grants; `wail token revoke` stops one without a restart.
func TestTokenCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	create := func(name string, grants ...string) string {
		t.Helper()
		args := []string{"token", "create", name, "--tokens-file", tokens}
		for _, g := range grants {
			args = append(args, "--grant", g)
		}
		code, out, errOut := runEnv(ctx, nil, args...)
		if code != 0 || !strings.Contains(errOut, "it is shown once") {
			t.Fatalf("%q: code %d: %s", args, code, errOut)
		}
		tok := strings.TrimSpace(out)
		file := filepath.Join(dir, name+".token")
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	adminFile := create("ops", "admin:*")
	writerFile := create("writer", "produce:orders")
	if code, _, errOut := runEnv(ctx, nil, "token", "create", "x", "--grant", "write:orders", "--tokens-file", tokens); code != 2 || !strings.Contains(errOut, "permission \"write\"") {
		t.Fatalf("a bad grant: code %d: %s", code, errOut)
	}
	if code, out, _ := runEnv(ctx, nil, "token", "ls", "--tokens-file", tokens); code != 0 || !strings.Contains(out, "writer") || !strings.Contains(out, "produce:orders") {
		t.Fatalf("token ls: %d %s", code, out)
	}

	ca := tlstest.NewCA(t, "wail-test")
	pair := ca.Server(t, "server")
	url := servertest.Start(t, func(c *config.Config) {
		c.Security.TLS = config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: tokens}
		c.Security.ReloadInterval = 20 * time.Millisecond
	})
	addr := strings.TrimPrefix(url, "https://")
	as := func(tokenFile string, args ...string) (int, string, string) {
		args = append(args, "--addr", addr, "--ca", ca.File)
		if tokenFile != "" {
			args = append(args, "--token-file", tokenFile)
		}
		return runEnv(ctx, nil, args...)
	}
	for _, step := range []struct {
		token   string
		args    []string
		code    int
		wantOut string
	}{
		{adminFile, []string{"table", "create", "orders"}, 0, "created table orders"},
		{writerFile, []string{"put", "orders", "k", "v"}, 0, ""},
		{writerFile, []string{"get", "orders", "k"}, 1, "error: permission_denied: token:writer lacks the read permission on table \"orders\""},
		{writerFile, []string{"table", "drop", "orders"}, 1, "error: permission_denied: token:writer lacks the admin permission"},
		{"", []string{"get", "orders", "k"}, 1, "error: unauthenticated: this API needs a bearer token"},
	} {
		code, out, errOut := as(step.token, step.args...)
		if code != step.code || !strings.Contains(out+errOut, step.wantOut) {
			t.Errorf("%q as %s: code %d, %s%s; want code %d and %q", step.args, filepath.Base(step.token), code, out, errOut, step.code, step.wantOut)
		}
	}
	// WAIL_TOKEN and WAIL_CA instead of the flags.
	tok, _ := os.ReadFile(writerFile)
	env := map[string]string{"WAIL_ADDR": addr, "WAIL_CA": ca.File, "WAIL_TOKEN": strings.TrimSpace(string(tok))}
	if code, _, errOut := runEnv(ctx, env, "put", "orders", "k", "v2"); code != 0 {
		t.Fatalf("put with WAIL_TOKEN and WAIL_CA: %d %s", code, errOut)
	}

	if code, out, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--tokens-file", tokens); code != 0 || !strings.Contains(out, "revoked 1 token(s)") {
		t.Fatalf("token revoke: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runEnv(ctx, nil, "token", "revoke", "writer", "--tokens-file", tokens); code != 1 || !strings.Contains(errOut, "no unrevoked token") {
		t.Fatalf("token revoke again: %d %s", code, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, errOut := as(writerFile, "put", "orders", "k", "v3")
		if code == 1 && strings.Contains(errOut, "error: unauthenticated: revoked bearer token") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token still works after 10s: %d %s", code, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
