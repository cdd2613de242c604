package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// TestAuditSkipsTheUnauthenticated: with auth on, a request refused for
// want of a principal (no token, a bad one) is no admin operation and
// writes no audit line, on the HTTP admin endpoints as on the admin RPCs
// (refused before the interceptor). Before, anyone who could reach the
// port wrote an INFO line per request to /registry or /console/api/, its
// path up to api.max_header_bytes long. With auth off, an anonymous
// admin operation is still audited.
func TestAuditSkipsTheUnauthenticated(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Security.Auth.Enabled = on
		var logs syncBuf
		g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		mux := NewMux()
		Mount(mux, Unimplemented(), g.Options()...)
		mux.HandleFunc("/registry/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
		srv := httptest.NewServer(g.Middleware(mux))
		for _, bearer := range []string{"", "nope"} {
			for _, path := range []string{"/registry/subjects/" + strings.Repeat("a", 10000), "/console/api/tail"} {
				hr, _ := http.NewRequest(http.MethodDelete, srv.URL+path, nil)
				if bearer != "" {
					hr.Header.Set("Authorization", "Bearer "+bearer)
				}
				if resp, err := srv.Client().Do(hr); err == nil {
					resp.Body.Close()
				}
			}
			req := connect.NewRequest(&wailv1.DropTableRequest{Name: "orders"})
			if bearer != "" {
				req.Header().Set("Authorization", "Bearer "+bearer)
			}
			_, _ = wailv1connect.NewAdminServiceClient(srv.Client(), srv.URL).DropTable(context.Background(), req)
		}
		srv.Close()
		n := strings.Count(logs.String(), "audit: admin operation")
		if on && n != 0 {
			t.Errorf("auth on: %d audit lines of unauthenticated requests:\n%.500s", n, logs.String())
		}
		if !on && n == 0 {
			t.Errorf("auth off: the anonymous admin operations were not audited")
		}
	}
}
