package sink

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestSinkRefusesLinkLocalSpellings: 169.254.169.254 written as inet_aton
// takes it (one decimal number, octal or hex parts, fewer parts, a
// trailing dot) is refused like the dotted form. netip does not parse
// them, so they passed for names: create took them, and behind an
// HTTP(S)_PROXY, where the proxy resolves the name (getaddrinfo reads
// these forms as the address), the request went to the metadata service;
// the dialer's check sees only the proxy's address.
func TestSinkRefusesLinkLocalSpellings(t *testing.T) {
	t.Parallel()
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1) // a proxy that would fetch r.URL for the sink
	}))
	defer proxy.Close()
	pu, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := NewHTTPClient(nil)
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(pu)
	for _, u := range []string{
		"http://2852039166/latest/meta-data/",
		"http://0xA9.0xFE.0xA9.0xFE/",
		"http://0251.0376.0251.0376/",
		"http://0xa9fea9fe/",
		"http://169.254.43518/",
		"http://169.16689662/",
		"http://169.254.169.254./",
		"http://0x0A9.254.169.254:80/",
		"http://[::ffff:a9fe:a9fe]/",
	} {
		def := WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: u, TimeoutMs: 2000})
		if err := Validate(def); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cloud instance metadata") {
			t.Errorf("create %s: %v, want ErrInvalid", u, err)
		}
		a := post(context.Background(), c, def, "t/0/0-1", 1, []byte("{}"), "application/json", time.Now())
		if !errors.Is(a.err, ErrForbiddenAddress) || a.status != 0 {
			t.Errorf("post %s through a proxy: HTTP %d, %v; want ErrForbiddenAddress", u, a.status, a.err)
		}
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("the proxy was asked %d times for link-local addresses", n)
	}
	// Names that merely look numeric stay names.
	for _, u := range []string{"http://10.0.0.1/x", "http://0x.example/", "http://1.2.3.4.5/", "http://hooks-169.internal/", "http://123abc/",
		"http://169.253.65536/", "http://169.254.169.256/"} { // a part over its bits: no address (inet_aton refuses it)
		if err := Validate(WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: u})); err != nil {
			t.Errorf("create %s: %v, want it taken", u, err)
		}
	}
}
