package sink

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
)

// TestHealthHidesTheSinksURLPath: a failing sink's condition on /healthz,
// which anyone who reaches the port may read (no credentials), names the
// endpoint's scheme and host but not its path or query: sink URLs carry
// tokens there (validation tells users to put one in the path rather than
// credentials in the URL, and Slack-style webhook URLs are secrets whole).
func TestHealthHidesTheSinksURLPath(t *testing.T) {
	const secret = "SECRETB0/XXSECRETXX"
	for _, tc := range []struct {
		name  string
		serve bool // an endpoint answering 503, else connection refused
	}{
		{"connection refused", false},
		{"HTTP 503", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			if tc.serve {
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				})}
				go srv.Serve(ln)
				t.Cleanup(func() { srv.Close() })
			} else {
				ln.Close()
			}
			reg := health.NewRegistry(nil)
			m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond, Health: reg,
				Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
			m.Start(context.Background())
			defer m.Close()
			def := &wailv1.Sink{Table: testTable, Name: "hook", Url: "http://" + addr + "/services/" + secret + "?key=SECRETQ",
				Start: "beginning", TimeoutMs: 1000, BackoffMinMs: 5, BackoffMaxMs: 20, MaxRetryMs: 60_000}
			if _, _, err := m.Create(context.Background(), def); err != nil {
				t.Fatal(err)
			}
			f.publish(event("k", 1))
			var text string
			waitFor(t, "the sink's condition", 30*time.Second, func() bool {
				rep := reg.Report()
				text = rep.Text()
				return strings.Contains(text, "sink/"+testTable+"/hook")
			})
			if strings.Contains(text, "SECRET") {
				t.Errorf("/healthz shows the sink URL's path or query:\n%s", text)
			}
			if !strings.Contains(text, "http://"+addr) {
				t.Errorf("/healthz does not name the endpoint's host %s:\n%s", addr, text)
			}
		})
	}
}
