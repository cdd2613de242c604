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
