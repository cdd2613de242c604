package sink

import (
	"errors"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestValidateURL: a URL no request can reach is refused when the sink is
// created, naming the URL, rather than taken and retried until its
// batches are dead-lettered (every attempt failing to dial).
func TestValidateURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"https://hooks.example.com/services/T0/B0", true},
		{"http://[::1]:9000/x", true},
		{"http://example.com", true},
		{"http://:8080/hook", false},         // no host name
		{"http://example.com:99999/", false}, // no such port
		{"http://example.com:0/", false},
		{"ftp://example.com/", false},
		{"/hook", false},
		{"http://user:pw@example.com/", false},
	} {
		s := WithDefaults(&wailv1.Sink{Table: "t", Name: "s", Url: tc.url})
		err := Validate(s)
		if tc.ok != (err == nil) {
			t.Errorf("url %q: %v; want ok %v", tc.url, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "url")) {
			t.Errorf("url %q: %v", tc.url, err)
		}
	}
}
