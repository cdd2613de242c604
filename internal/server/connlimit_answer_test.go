package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// TestConnectionLimitAnswers: past api.max_connections, a request that is
// neither an RPC nor /healthz or /metrics is answered 503 naming the
// setting, in the schema registry's error body on its path, with
// Retry-After and Connection: close (a client that retries on the same
// connection would be refused again).
func TestConnectionLimitAnswers(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxConnections = 1
		cfg.API.ReadHeaderTimeout = time.Minute // the silent connection stays for the test
	})
	rawConn(t, c.url)
	time.Sleep(100 * time.Millisecond) // accepted
	for _, tc := range []struct {
		name, path string
		registry   bool
	}{
		{"plain HTTP", "/nothing-here", false},
		{"schema registry", config.SchemaRegistryPath + "/subjects", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Transport: &http.Transport{}}
			resp, err := hc.Get(c.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After %q, want 1", got)
			}
			if !resp.Close {
				t.Error("no Connection: close")
			}
			msg := string(body)
			if tc.registry {
				var e struct {
					Code    int    `json:"error_code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Code != http.StatusServiceUnavailable {
					t.Fatalf("registry error body %s (%v), want error_code 503", body, err)
				}
				msg = e.Message
			}
			if !strings.Contains(msg, "api.max_connections") {
				t.Errorf("answer %q does not name api.max_connections", msg)
			}
		})
	}
}

// TestConnectionsGaugeFallsOnClose: wail_api_connections falls when a
// connection closes, as a scraper that keeps its connection alive sees
// (no accept sets it meanwhile).
func TestConnectionsGaugeFallsOnClose(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.API.ReadHeaderTimeout = time.Minute })
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	scrape := func() float64 {
		resp, err := (&http.Client{Transport: tr}).Get(c.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		v := -1.0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "wail_api_connections" {
				v, _ = strconv.ParseFloat(f[1], 64)
			}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return v
	}
	wait := func(want float64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := scrape()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("wail_api_connections = %v, want %v", got, want)
			}
		}
	}
	base := scrape() // the scraper's connection, and any other open
	conn := rawConn(t, c.url)
	wait(base + 1)
	conn.Close()
	wait(base)
	if n := dials.Load(); n != 1 {
		t.Fatalf("the scraper dialled %d times, want its one kept-alive connection", n)
	}
}

// TestRefusedCountsClosedAtOnce: wail_api_connections_refused_total
// counts the connections closed at once (past api.max_connections and 64
// refused ones) too, not only the refused ones that were answered.
func TestRefusedCountsClosedAtOnce(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxConnections = 1
		cfg.API.ReadHeaderTimeout = time.Minute
	})
	rawConn(t, c.url)
	refused := make([]net.Conn, 64)
	for i := range refused {
		refused[i] = rawConn(t, c.url)
	}
	time.Sleep(100 * time.Millisecond) // all accepted
	const over = 3
	for range over {
		if !closedSoon(rawConn(t, c.url), time.Second) {
			t.Fatal("a connection past api.max_connections and 64 refused ones was not closed at once")
		}
	}
	for _, conn := range refused { // they close within seconds: /metrics answers again
		if !closedSoon(conn, 5*time.Second) {
			t.Fatal("a refused connection that sends nothing was not closed within 2s")
		}
	}
	// 64 refused, the ones closed at once, and the scrape's own.
	if got, want := metric(t, c.url, "wail_api_connections_refused_total"), float64(64+over+1); got != want {
		t.Fatalf("wail_api_connections_refused_total = %v, want %v", got, want)
	}
}
