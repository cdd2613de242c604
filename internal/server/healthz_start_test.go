package server_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestHealthDetailWhileStarting: with auth on, /healthz shows its
// conditions only to a principal with the metrics permission, while the
// server starts as once it serves. The start's conditions (what it waits
// for: the store's or the brokers' address, the error) went to every
// caller, the starting handler's /healthz showing them whole; the status
// code is the same for both (503: unhealthy).
func TestHealthDetailWhileStarting(t *testing.T) {
	t.Parallel()
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	tokens := map[string]string{}
	for name, grants := range map[string][]string{"metrics": {"metrics"}, "consume": {"consume:t"}} {
		gs, err := auth.ParseGrants(grants)
		if err != nil {
			t.Fatal(err)
		}
		if tokens[name], _, err = tf.Create(name, gs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tf.Write(tokensFile); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: "postgres://wail:wail@127.0.0.1:1/wail", MaxConns: 1, QueryTimeout: time.Second}
	cfg.Security.Auth = config.Auth{Enabled: true, TokensFile: tokensFile}
	base, _, _ := starting(t, cfg)
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const secret = "the postgres store"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, body := get(tokens["metrics"]); strings.Contains(body, secret) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("/healthz to a metrics principal while the store is down: %q; want what the start waits for", body)
		}
	}
	for _, who := range []string{"", "consume"} {
		code, body := get(tokens[who])
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "unhealthy") {
			t.Errorf("/healthz to %q while starting: %d %q; want 503, unhealthy", who, code, body)
		}
		if strings.Contains(body, secret) || !strings.Contains(body, "metrics permission") {
			t.Errorf("/healthz to %q while starting: %q; want the conditions hidden, saying the detail needs the metrics permission", who, body)
		}
	}
}
