package api

import (
	"net/http"
	"testing"

	"github.com/wail-cdc/wail/internal/auth"
)

// TestConsolePermission: the console's pages are open (static, no data),
// its whoami needs a principal, its live series the metrics permission,
// its tail and a key's history admin (they show any table's events).
func TestConsolePermission(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]auth.Permission{
		"/console/api/whoami":         signedIn,
		"/console/api/series":         auth.Metrics,
		"/console/api/tail":           auth.Admin,
		"/console/api/history":        auth.Admin,
		"/console/api/anything-new":   auth.Admin,
		"/console/api/series/../tail": auth.Admin,
	} {
		e, ok := endpointOf(path)
		if got := e.Permission(http.MethodGet, path); !ok || got != want {
			t.Errorf("GET %s needs %q (known %v), want %q", path, got, ok, want)
		}
	}
	// "/console", as typed in a browser, is redirected to "/console/"
	// (it was refused: no permission mapped).
	for _, path := range []string{"/console", "/console/", "/console/app.js", "/console/index.html"} {
		if e, ok := endpointOf(path); !ok || !e.Open {
			t.Errorf("GET %s is not open: %+v", path, e)
		}
	}
}
