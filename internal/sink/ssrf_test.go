package sink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

var linkLocalURLs = []string{
	"http://169.254.169.254/latest/meta-data/",
	"http://169.254.170.2/v2/credentials",
	"http://[::ffff:169.254.169.254]/",
	"http://[fd00:ec2::254]/latest/meta-data/",
	"http://[fe80::1%25lo]:8080/",
	"http://224.0.0.251/",    // link-local multicast
	"http://[ff02::1]:8080/", // link-local multicast
}

// TestSinkRefusesLinkLocal: a sink never connects to a link-local
// address, where clouds serve instance metadata and credentials
// (169.254.169.254, fd00:ec2::254): a user with admin on one table could
// otherwise make the server post there and read the start of the answer
// in the sink's last error. Create refuses such a URL; a definition
// stored before is refused at each attempt, without connecting; and the
// address is checked as dialled, so a host name that resolves there is
// refused too. Loopback and private addresses stay allowed (internal
// endpoints are the common case: every other test posts to loopback).
func TestSinkRefusesLinkLocal(t *testing.T) {
	t.Parallel()
	c := NewHTTPClient(nil)
	for _, url := range linkLocalURLs {
		def := WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: url, TimeoutMs: 300})
		if err := Validate(def); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cloud instance metadata") {
			t.Errorf("create %s: %v, want ErrInvalid", url, err)
		}
		a := post(context.Background(), c, def, "t/0/0-1", 1, []byte("{}"), "application/json", time.Now())
		if !errors.Is(a.err, ErrForbiddenAddress) || a.status != 0 {
			t.Errorf("post %s: HTTP %d, %v; want ErrForbiddenAddress", url, a.status, a.err)
		}
	}
	dial := c.Transport.(*http.Transport).DialContext
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:443", "[fd00:ec2::254]:80"} {
		conn, err := dial(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dial %s (a name resolved there): %v, want ErrForbiddenAddress", addr, err)
		}
	}
	for _, url := range []string{"http://127.0.0.1:1/x", "http://10.0.0.1/x", "http://[::1]:8080/", "http://[fd12::1]/", "http://hooks.internal/x"} {
		if err := Validate(WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: url})); err != nil {
			t.Errorf("create %s: %v, want it taken", url, err)
		}
	}
}
