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
	tailAfter(t, func(tf *auth.TokenFile) {
		if tf.Revoke("ops", time.Now()) != 1 {
			t.Fatal("nothing revoked")
		}
	}, "revoked bearer token", false)
}

// TestRevokedTokenEndsIdleTail: a tail of a table that gets no write after
// the revocation ends too (it was checked only as it sent an event, and a
// tail of a quiet table streamed on for as long as its connection lived).
func TestRevokedTokenEndsIdleTail(t *testing.T) {
	t.Parallel()
	tailAfter(t, func(tf *auth.TokenFile) {
		if tf.Revoke("ops", time.Now()) != 1 {
			t.Fatal("nothing revoked")
		}
	}, "revoked bearer token", true)
}

// TestNarrowedGrantEndsTail: a console tail whose token lost its admin
// grant (the tokens file edited) ends as a revoked one's does.
func TestNarrowedGrantEndsTail(t *testing.T) {
	t.Parallel()
	tailAfter(t, func(tf *auth.TokenFile) {
		for i := range tf.Tokens {
			if tf.Tokens[i].Name == "ops" {
				tf.Tokens[i].Grants = []string{"read:t"}
			}
		}
	}, "lacks the admin permission", false)
}

// tailAfter opens a tail with an admin token, changes the tokens file
// with change, and checks that the tail sends no event after the change
// took effect (a new request with the token is refused) but an error event
// saying why; idle: with no write after the change.
func tailAfter(t *testing.T, change func(*auth.TokenFile), why string, idle bool) {
	t.Helper()
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
	change(tf)
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	// The change took effect: a new request with the token is refused.
	for {
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/console/api/history?table=t&key=x", nil)
		r.Header.Set("Authorization", "Bearer "+tokens["ops"])
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * reload) // the tail's next check is due (at most every reload_interval)
	if !idle {
		write("after")
	}
	got := next()
	if strings.HasPrefix(got, "data: ") {
		t.Fatalf("the tail sent %s after the change", got)
	}
	if data := next(); got != "event: error" || !strings.Contains(data, why) {
		t.Fatalf("the tail ended with %q %q, want an error event saying %q", got, data, why)
	}
	if end := next(); !strings.HasPrefix(end, "end: ") {
		t.Fatalf("the tail went on after the error: %q", end)
	}
}
