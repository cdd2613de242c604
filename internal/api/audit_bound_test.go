package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestAuditLinesBounded: an authenticated caller without the admin grant
// is audited when it asks for an admin operation (it is refused), and
// chooses what the line holds: the path of a registry request (up to
// api.max_header_bytes), the table names of an admin RPC (up to the
// request's size). Each field is cut to a few hundred bytes with a marker
// that says how long it was, so a refused request writes a short line that
// still says who asked for what. Before, the line was as long as the
// request (hunt-f).
func TestAuditLinesBounded(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	tf := &auth.TokenFile{}
	tok, _, _ := tf.Create("writer", []auth.Grant{{Permission: auth.Produce, Tables: "t"}}, time.Now())
	if err := tf.Write(cfg.TokensPath()); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux()
	Mount(mux, Unimplemented(), g.Options()...)
	mux.HandleFunc("/registry/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()

	long := strings.Repeat("a", 60<<10)
	hr, _ := http.NewRequest(http.MethodDelete, srv.URL+"/registry/subjects/"+long, nil)
	hr.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := srv.Client().Do(hr); err == nil {
		resp.Body.Close()
	}
	req := connect.NewRequest(&wailv1.DropTableRequest{Name: long})
	req.Header().Set("Authorization", "Bearer "+tok)
	_, _ = wailv1connect.NewAdminServiceClient(srv.Client(), srv.URL).DropTable(context.Background(), req)

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var audit []string
	for _, l := range lines {
		if strings.Contains(l, "audit: admin operation") {
			audit = append(audit, l)
		}
	}
	if len(audit) != 2 {
		t.Fatalf("%d audit lines, want 2 (the refused DELETE and DropTable):\n%.2000s", len(audit), logs.String())
	}
	for i, want := range [][]string{
		{"principal=token:writer", `endpoint="DELETE /registry/subjects/aaaa`, "status=403", "…(61466 bytes)"},
		{"principal=token:writer", "procedure=/wail.v1.AdminService/DropTable", `tables="[aaaa`, "code=permission_denied", "…(61440 bytes)]"},
	} {
		l := audit[i]
		if len(l) > 2048 {
			t.Errorf("audit line %d is %d bytes, want < 2 KiB: %.300s...", i, len(l), l)
		}
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("audit line %d has no %q: %.300s...", i, w, l)
			}
		}
	}
}

// TestAuditTables: at most auditTablesMax names, then how many more;
// each cut on a rune boundary.
func TestAuditTables(t *testing.T) {
	t.Parallel()
	many := make([]string, 100)
	for i := range many {
		many[i] = "t"
	}
	got := auditTables(many)
	if len(got) != auditTablesMax+1 || got[auditTablesMax] != "…(92 more)" {
		t.Errorf("auditTables of 100 names: %q", got)
	}
	s := auditField(strings.Repeat("é", 200)) // 400 bytes, 2 each
	if !strings.HasSuffix(s, "…(400 bytes)") || !utf8.ValidString(s) {
		t.Errorf("auditField of 200 é: %q", s)
	}
	if got := auditTables(nil); len(got) != 0 {
		t.Errorf("auditTables(nil) = %q", got)
	}
}
