package console_test

import (
	"bufio"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestRevokedTokenEndsTail: a console tail opened with a token revoked
// since sends no event after the revocation took effect: it ends with an
// error event, as an RPC stream ends unauthenticated (it streamed every
// event of the table for as long as its connection lived).
func TestRevokedTokenEndsTail(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	tokens := map[string]string{}
	for name, grant := range map[string]string{"ops": "admin:*", "writer": "produce:t"} {
		g, err := auth.ParseGrant(grant)
		if err != nil {
			t.Fatal(err)
		}
		if tokens[name], _, err = tf.Create(name, []auth.Grant{g}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	const reload = 10 * time.Millisecond
	url := servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 1}}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: path}
		c.Security.ReloadInterval = reload
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/console/api/tail?table=t", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["ops"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tail: %d", resp.StatusCode)
	}
	lines := bufio.NewReader(resp.Body)
	next := func() string { // the next event's data, or an error event
		t.Helper()
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				return "end: " + err.Error()
			}
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "data: ") || strings.HasPrefix(line, "event: ") {
				return line
			}
		}
	}
	write := func(key string) {
		t.Helper()
		pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
		req := connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte(key), Value: []byte("v")}}})
		req.Header().Set("Authorization", "Bearer "+tokens["writer"])
		if _, err := pc.Write(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	write("before")
	if got := next(); !strings.Contains(got, `"before"`) {
		t.Fatalf("the event before the revocation: %q", got)
	}
	if tf.Revoke("ops", time.Now()) != 1 {
		t.Fatal("nothing revoked")
	}
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	// The revocation took effect: a new request with the token is refused.
	for {
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/console/api/whoami", nil)
		r.Header.Set("Authorization", "Bearer "+tokens["ops"])
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * reload) // the tail's next check is due (at most every reload_interval)
	write("after")
	got := next()
	if strings.HasPrefix(got, "data: ") {
		t.Fatalf("the tail of a revoked token sent %s", got)
	}
	if why := next(); got != "event: error" || !strings.Contains(why, "revoked bearer token") {
		t.Fatalf("the tail ended with %q %q, want an error event naming the revocation", got, why)
	}
	if end := next(); !strings.HasPrefix(end, "end: ") {
		t.Fatalf("the tail went on after the error: %q", end)
	}
}
