package client_test

import (
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
