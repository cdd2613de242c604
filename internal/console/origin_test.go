package console_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestCrossOriginRefused: with auth off, a page of another site cannot
// open a tail (nor read the console's other endpoints) in the browser of
// someone who can reach wail: a request a browser marks as from another
// origin (Origin not this host's nor in console.allowed_origins, or
// Sec-Fetch-Site cross-site or same-site, as a no-cors fetch or an <img>
// sends with no Origin) is refused 403 before it takes a tail's slot. The
// console's own pages (same origin), a listed origin, and clients that are
// not browsers (no Origin, no Sec-Fetch-Site: curl, wail) are served; so
// is a page of the console reached from a link on another site.
func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	base := servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 1}}
		c.Console.AllowedOrigins = []string{"https://ops.example"}
	})
	host := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct {
		name, path, origin, site string
		want                     int
	}{
		{"another site's page", "/console/api/tail?table=t", "https://evil.example", "cross-site", 403},
		{"another site, an older browser", "/console/api/tail?table=t", "https://evil.example", "", 403},
		{"another site, no-cors (no Origin)", "/console/api/tail?table=t", "", "cross-site", 403},
		{"a sibling site", "/console/api/tail?table=t", "", "same-site", 403},
		{"another port of this host", "/console/api/tail?table=t", "http://" + strings.Split(host, ":")[0] + ":1", "", 403},
		{"another site's page, history", "/console/api/history?table=t&key=k", "https://evil.example", "cross-site", 403},
		{"another site's page, whoami", "/console/api/whoami", "", "cross-site", 403},
		{"the console itself", "/console/api/tail?table=t", "", "same-origin", 200},
		{"the console itself, an older browser", "/console/api/tail?table=t", "http://" + host, "", 200},
		{"a listed origin", "/console/api/tail?table=t", "https://ops.example", "cross-site", 200},
		{"not a browser", "/console/api/tail?table=t", "", "", 200},
		{"a link to the console from another site", "/console/", "", "cross-site", 200},
	} {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.path, nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				body := make([]byte, 512)
				n, _ := resp.Body.Read(body) // a tail streams on: its first lines
				t.Errorf("%s: GET %s: %d %s, want %d", tc.name, tc.path, resp.StatusCode, body[:n], tc.want)
				return
			}
			if tc.want == 403 {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "console.allowed_origins") {
					t.Errorf("%s: refusal %q does not say what to do", tc.name, body)
				}
			}
		}()
	}
}

// TestStreamsNotSimpleRequests: the API's streams (wail tail's
// Subscribe, write streams) cannot be opened by another site's page
// either: a browser sends a cross-site request without asking first
// only with a text/plain, form or no body type, and Connect answers those
// 415 before any stream starts (a Connect stream needs
// application/connect+proto or +json, which a browser asks the server
// about first, and wail answers no CORS preflight).
func TestStreamsNotSimpleRequests(t *testing.T) {
	t.Parallel()
	base := servertest.Start(t, func(c *config.Config) { c.Tables = []config.Table{{Name: "t", Partitions: 1}} })
	for _, proc := range []string{wailv1connect.EventServiceSubscribeProcedure, wailv1connect.ProducerServiceWriteStreamProcedure} {
		for _, ctype := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
			req, _ := http.NewRequest(http.MethodPost, base+proc, strings.NewReader(`{"table":"t"}`))
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// A write stream (both ways) needs HTTP/2 first: 505 here.
			if resp.StatusCode != http.StatusUnsupportedMediaType && resp.StatusCode != http.StatusHTTPVersionNotSupported {
				t.Errorf("POST %s as %q: %d, want 415 (or 505)", proc, ctype, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, base+proc+"?encoding=json&message=%7B%22table%22%3A%22t%22%7D", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("GET %s: %d, want a refusal (no stream by GET)", proc, resp.StatusCode)
		}
	}
}

// TestRebindingRefused: a page of a site whose name its DNS re-points at
// wail's address (DNS rebinding) is, to the browser, of its own origin:
// it sends Sec-Fetch-Site same-origin (and, on a POST, its own origin),
// which the origin checks let through. With auth off, wail answers only to
// the names it is reached by (localhost, IP addresses, listen's host,
// security.allowed_hosts): the page can neither tail events nor drop a
// table. A name in security.allowed_hosts is served.
func TestRebindingRefused(t *testing.T) {
	t.Parallel()
	base := servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 1}}
		c.Security.AllowedHosts = []string{"wail.internal"}
	})
	port := base[strings.LastIndex(base, ":"):]
	for _, tc := range []struct {
		name, host, method, path, body string
		want                           int
	}{
		{"a tail", "evil.example" + port, "GET", "/console/api/tail?table=t", "", 403},
		{"a drop", "evil.example" + port, "POST", "/wail.v1.AdminService/DropTable", `{"name":"t","force":true}`, 403},
		{"an allowed host's tail", "wail.internal" + port, "GET", "/console/api/tail?table=t", "", 200},
	} {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Host = tc.host
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			if tc.method == "POST" {
				req.Header.Set("Origin", "http://"+tc.host)
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				body := make([]byte, 512)
				n, _ := resp.Body.Read(body)
				t.Errorf("%s: %s %s as Host %s: %d %s, want %d", tc.name, tc.method, tc.path, tc.host, resp.StatusCode, body[:n], tc.want)
			}
		}()
	}
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, base)
	if _, err := admin.DescribeTable(context.Background(), connect.NewRequest(&wailv1.DescribeTableRequest{Name: "t"})); err != nil {
		t.Errorf("table t after the refused drop: %v", err)
	}
}
