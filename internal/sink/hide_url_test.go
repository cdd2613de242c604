package sink

import (
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestHideURL: what callers without admin see of a sink hides its URL's
// path and query wherever the last error has them: quoted whole by
// net/http, or the path alone, as an endpoint's answer quotes it (a 404
// naming the route, without the query).
func TestHideURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, lastErr string }{
		{"http://h:1/services/SECRET?key=Q", `Post "http://h:1/services/SECRET?key=Q": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"http://h:1/services/SECRET?key=Q", "HTTP 404: no route for /services/SECRET"},
		{"http://h:1/services/SECRET?key=Q", "HTTP 400: bad request to /services/SECRET?key=Q"},
		{"http://h:1/services/SECRET", "HTTP 404: no route for /services/SECRET"},
	} {
		st := &wailv1.SinkStatus{Sink: &wailv1.Sink{Url: tc.url}, LastError: tc.lastErr}
		HideURL(st)
		shown := st.Sink.Url + " " + st.LastError
		if strings.Contains(shown, "SECRET") || strings.Contains(shown, "key=Q") {
			t.Errorf("%s, %q: shown %q", tc.url, tc.lastErr, shown)
		}
		if !strings.HasPrefix(st.Sink.Url, "http://h:1/") {
			t.Errorf("%s: url shown %q, want its host", tc.url, st.Sink.Url)
		}
	}
}

// TestHideURLCredentials: a create refuses credentials in the URL, but a
// definition read from the store is not checked as a create checks it (an
// older version's, a hand edit). The hider left a URL of path "/" as it
// was, credentials and all, on /healthz (which answers anyone) and to
// callers without admin; with a path, net/http's quoting of the URL
// (password as ***) kept the user name.
func TestHideURLCredentials(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://USER:PASS@h:1/", "http://USER:PASS@h:1", "http://USER:PASS@h:1/p?q=1", "http://USER@h:1/"} {
		hide := urlHider(u)
		quoted := strings.Replace(u, ":PASS@", ":***@", 1) // as net/http quotes it in its errors
		for _, s := range []string{u, "check the endpoint " + u, `Post "` + quoted + `": connection refused`} {
			if got := hide(s); strings.Contains(got, "USER") || strings.Contains(got, "PASS") {
				t.Errorf("%s: %q shown as %q", u, s, got)
			}
		}
	}
}
