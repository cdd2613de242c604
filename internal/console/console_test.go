package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

func startServer(t *testing.T, maxTails int) string {
	t.Helper()
	return servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}}
		c.Console.MaxTails = maxTails
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue sums the series of name in a /metrics text whose labels
// contain every one of labels ("k=\"v\"").
func metricValue(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
next:
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestConsole: the console's pages are served from the binary; its
// series say what /metrics says; its tail streams the events written
// after it opened whose key contains the filter, and no others; a tail
// over console.max_tails or of an unknown table is refused.
func TestConsole(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := startServer(t, 1)
	for _, path := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		if code, body := get(t, url+path); code != http.StatusOK || len(body) < 100 {
			t.Fatalf("%s: %d, %d bytes", path, code, len(body))
		}
	}
	if code, _ := get(t, url+"/console/api/tail?table=nope"); code != http.StatusNotFound {
		t.Errorf("tail of an unknown table: %d, want 404", code)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/console/api/tail?table=t&key=match", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewReader(resp.Body)
	if first, _ := lines.ReadString('\n'); !strings.HasPrefix(first, ": tail of t") {
		t.Fatalf("first line %q", first)
	}
	if code, body := get(t, url+"/console/api/tail?table=t"); code != http.StatusTooManyRequests || !strings.Contains(body, "close one") {
		t.Errorf("a second tail over max_tails 1: %d %q, want 429", code, body)
	}

	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	var muts []*wailv1.Mutation
	for i := range 20 {
		key := "other-" + strconv.Itoa(i)
		if i%4 == 0 {
			key = "match-" + strconv.Itoa(i)
		}
		muts = append(muts, &wailv1.Mutation{Table: "t", Key: []byte(key), Value: []byte("v" + strconv.Itoa(i))})
	}
	if _, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 5 {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("tail ended after %v: %v", got, err)
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok {
			continue
		}
		var e console.TailEvent
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Key, "match") || e.Op != "UPSERT" || e.Version == 0 || e.Value == "" {
			t.Fatalf("tail sent %+v", e)
		}
		got[e.Key] = true
	}

	// A key's history: its one event, from the bus.
	code, body := get(t, url+"/console/api/history?table=t&key=match-4")
	var h console.History
	if err := json.Unmarshal([]byte(body), &h); code != http.StatusOK || err != nil {
		t.Fatalf("history: %d %s %v", code, body, err)
	}
	if len(h.Events) != 1 || h.Events[0].Key != "match-4" || h.Events[0].Value != "v4" || !h.Complete || h.End == 0 {
		t.Errorf("history of match-4: %+v", h)
	}
	if code, _ := get(t, url+"/console/api/history?table=t&key="); code != http.StatusBadRequest {
		t.Errorf("history of no key: %d, want 400", code)
	}

	// A client that goes away frees its tail.
	resp.Body.Close()
	waitOK := time.Now().Add(10 * time.Second)
	for {
		r2, err := http.Get(url + "/console/api/tail?table=t")
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(waitOK) {
			t.Fatalf("the closed tail was never freed: %d", r2.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The series catch up with /metrics once the writes stop.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := get(t, url+"/metrics")
		writes := metricValue(t, metrics, "wail_proxy_mutations_total", `table="t"`, `result="stored"`)
		events := metricValue(t, metrics, "wail_resolver_events_total", `table="t"`)
		_, body := get(t, url+"/console/api/series")
		var s struct {
			Tables map[string][]console.Point `json:"tables"`
		}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		pts := s.Tables["t"]
		if n := len(pts); n > 0 && writes == 20 && events == 20 && pts[n-1].WritesTotal == writes && pts[n-1].EventsTotal == events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("series never matched /metrics (writes %v, events %v): %s", writes, events, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
