package server

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/health"
)

// bearer adds a bearer token to every request.
type bearer struct {
	tok  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.next.RoundTrip(r)
}

// TestTokensFileRemovedShown: the tokens file removed while wail runs
// refuses every token (as a missing file holds none) and says so on
// /healthz, naming the file and what to run; the condition clears once
// the file is back. A tokens file missing at the start (none made yet)
// raises nothing.
func TestTokensFileRemovedShown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Security.Auth.Enabled = true
	cfg.Security.ReloadInterval = 10 * time.Millisecond
	path := cfg.TokensPath()
	var tf auth.TokenFile
	g, err := auth.ParseGrants([]string{"produce:t"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tf.Create("app", g, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	r := runServer(t, cfg, seams{})
	client := &http.Client{Transport: bearer{tok, http.DefaultTransport}}
	producer := wailv1connect.NewProducerServiceClient(client, r.url)
	put := func() error {
		_, err := producer.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
		return err
	}
	condition := func() (health.Condition, bool) {
		for _, c := range r.srv.health.Report().Conditions {
			if strings.Contains(c.Reason, path) && strings.Contains(c.Reason, "removed") {
				return c, true
			}
		}
		return health.Condition{}, false
	}
	if err := put(); err != nil {
		t.Fatalf("put with the token: %v", err)
	}
	if c, ok := condition(); ok {
		t.Fatalf("condition before any removal: %+v", c)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past reload_interval
	if err := put(); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("put with the tokens file removed: %v; want unauthenticated", err)
	}
	c, ok := condition()
	if !ok {
		t.Fatalf("no condition naming the removed tokens file %s: %+v", path, r.srv.health.Report())
	}
	if c.State == health.OK || !strings.Contains(c.Reason, "every bearer token is refused") || !strings.Contains(c.Action, "wail token") {
		t.Errorf("condition %+v: want it to say every bearer token is refused and what to run", c)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := put(); err != nil {
		t.Fatalf("put with the tokens file back: %v", err)
	}
	if c, ok := condition(); ok {
		t.Errorf("condition still raised with the file back: %+v", c)
	}
}
