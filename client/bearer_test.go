package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/client"
)

// TestTokenNotSentToAnotherHost: a server (or whoever answers in its
// name) that redirects the client to another host does not get the bearer
// token there, as net/http's own client drops Authorization on such a
// redirect; the server named in Addr still gets it, on every request.
func TestTokenNotSentToAnotherHost(t *testing.T) {
	t.Parallel()
	const tok = "wail_0123456789abcdef_secret"
	var mu sync.Mutex
	seen := map[string]string{} // server -> Authorization it got
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = r.Header.Get("Authorization")
			mu.Unlock()
		}
	}
	other := httptest.NewServer(record("other"))
	defer other.Close()
	// The same listener under another name: a different host to a client.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			record("home")(w, r)
			http.Redirect(w, r, otherURL+"/stolen", http.StatusTemporaryRedirect)
			return
		}
		record("home-again")(w, r)
	}))
	defer home.Close()

	c, err := client.Dial(client.Options{Addr: home.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if seen["home"] != "Bearer "+tok {
		t.Fatalf("the server named in Addr got Authorization %q, want the token", seen["home"])
	}
	if got, ok := seen["other"]; !ok {
		t.Fatal("the redirect was not followed: the test proves nothing")
	} else if got != "" {
		t.Fatalf("the host redirected to got Authorization %q: the token leaked", got)
	}
}

// TestTokenSources: at most one of Token, TokenFile and TokenSource; a
// TokenSource gives each request's token, and its error fails the request
// unsent; FromEnv takes WAIL_TOKEN_FILE when WAIL_TOKEN is not set, and
// neither over a token the options already have.
func TestTokenSources(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()
	src := func(tok string) client.TokenSource {
		return func(context.Context) (string, error) {
			if tok == "" {
				return "", errors.New("the identity provider is down")
			}
			return tok, nil
		}
	}
	if _, err := client.Dial(client.Options{Addr: srv.URL, Token: "a", TokenSource: src("b")}); err == nil || !strings.Contains(err.Error(), "one of Token, TokenFile and TokenSource") {
		t.Fatalf("two token sources: %v; want refused", err)
	}
	c, err := client.Dial(client.Options{Addr: srv.URL, TokenSource: src("from-source")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	down, err := client.Dial(client.Options{Addr: srv.URL, TokenSource: src("")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.HTTP.Get(down.URL + "/metrics"); err == nil || !strings.Contains(err.Error(), "identity provider is down") {
		t.Fatalf("a failing source: %v; want its error", err)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != "Bearer from-source" {
		t.Fatalf("the server got %q; want one request with the source's token", got)
	}
	mu.Unlock()

	env := map[string]string{client.EnvToken: "", client.EnvTokenFile: "/run/token"}
	o := client.Options{}.FromEnv(func(k string) string { return env[k] })
	if o.Token != "" || o.TokenFile != "/run/token" {
		t.Fatalf("FromEnv with WAIL_TOKEN_FILE: %+v", o)
	}
	env[client.EnvToken] = "t"
	if o := (client.Options{}).FromEnv(func(k string) string { return env[k] }); o.Token != "t" || o.TokenFile != "" {
		t.Fatalf("FromEnv with both: Token %q TokenFile %q; want WAIL_TOKEN alone", o.Token, o.TokenFile)
	}
	if o := (client.Options{TokenSource: src("x")}).FromEnv(func(k string) string { return env[k] }); o.Token != "" || o.TokenFile != "" {
		t.Fatalf("FromEnv over a TokenSource: %+v", o)
	}
}
