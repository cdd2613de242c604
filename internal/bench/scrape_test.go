package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const metricsText = `# HELP wail_resolver_reads_total Store reads by table and read level.
# TYPE wail_resolver_reads_total counter
wail_resolver_reads_total{level="0",table="bench_0"} 150
wail_resolver_reads_total{level="0",table="bench_1"} 50
wail_resolver_reads_total{level="0",table="orders"} 999
wail_resolver_events_total{table="bench_0"} 100
wail_resolver_events_total{table="bench_1"} 25
wail_resolver_covered_intents_total{table="bench_0"} 1.5e2
wail_resolver_lag_intents{partition="0",table="bench_0"} 3
wail_resolver_lag_intents{partition="1",table="bench_0"} 4
wail_resolver_lag_intents{partition="0",table="bench_1"} 0 1700000000000
wail_resolver_intent_to_event_seconds_bucket{table="bench_0",le="0.001"} 7
go_goroutines 42
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tables []string
		want   serverCounters
	}{
		{"two tables", []string{"bench_0", "bench_1"}, serverCounters{Reads: 200, Events: 125, Covered: 150, Lag: 7}},
		{"one table", []string{"bench_1"}, serverCounters{Reads: 50, Events: 25}},
		{"no table", nil, serverCounters{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tables := map[string]bool{}
			for _, n := range tc.tables {
				tables[n] = true
			}
			got, err := parseMetrics(strings.NewReader(metricsText), tables)
			if err != nil || got != tc.want {
				t.Errorf("parseMetrics = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := parseMetrics(strings.NewReader(`wail_resolver_events_total{table="t"} x`+"\n"), map[string]bool{"t": true}); err == nil {
		t.Error("a bad value parsed")
	}
}

func TestPerEvent(t *testing.T) {
	t.Parallel()
	r, c := perEvent(serverCounters{Reads: 10, Events: 10, Covered: 10}, serverCounters{Reads: 40, Events: 30, Covered: 70})
	if r != 1.5 || c != 3 {
		t.Errorf("perEvent = %v, %v; want 1.5, 3", r, c)
	}
	if r, c := perEvent(serverCounters{Events: 5}, serverCounters{Events: 5, Reads: 3}); r != 0 || c != 0 {
		t.Errorf("perEvent without events = %v, %v; want 0, 0", r, c)
	}
}

func TestScraper(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(metricsText))
	}))
	defer srv.Close()
	got, err := newScraper(srv.Client(), srv.URL, []string{"bench_0"}).scrape(t.Context())
	if err != nil || got.Lag != 7 || got.Events != 100 {
		t.Errorf("scrape = %+v, %v", got, err)
	}
	if _, err := newScraper(srv.Client(), srv.URL+"/nope", nil).scrape(t.Context()); err == nil {
		t.Error("a 404 scraped")
	}
}
