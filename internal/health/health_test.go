package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegistry(t *testing.T) {
	type step struct {
		component string
		state     State
		reason    string
		want      State
		conds     int
	}
	steps := []step{
		{"", OK, "", OK, 0},
		{"resolver/t/0", Degraded, "key parked", Degraded, 1},
		{"store", Unhealthy, "disk full", Unhealthy, 2},
		{"resolver/t/1", Degraded, "stalled", Unhealthy, 3},
		{"store", OK, "", Degraded, 2},
		{"resolver/t/0", OK, "", Degraded, 1},
		{"resolver/t/1", OK, "", OK, 0},
	}
	reg := prometheus.NewRegistry()
	r := NewRegistry(reg)
	for i, s := range steps {
		if s.component != "" {
			r.Set(s.component, s.state, s.reason, "")
		}
		rep := r.Report()
		if rep.State != s.want || len(rep.Conditions) != s.conds || r.State() != s.want {
			t.Fatalf("step %d: state %s with %d conditions, want %s with %d", i, rep.State, len(rep.Conditions), s.want, s.conds)
		}
		if g := testutil.ToFloat64(r.gauge); g != float64(s.want) {
			t.Fatalf("step %d: gauge %v, want %v", i, g, float64(s.want))
		}
	}
}

func TestSinceKeptWhileStateStays(t *testing.T) {
	r := NewRegistry(nil)
	now := time.Unix(100, 0)
	r.now = func() time.Time { return now }
	r.Set("a", Degraded, "one", "")
	now = now.Add(time.Minute)
	r.Set("a", Degraded, "two", "")
	if c := r.Report().Conditions[0]; !c.Since.Equal(time.Unix(100, 0)) || c.Reason != "two" {
		t.Fatalf("same state: %+v, want since 100s and the new reason", c)
	}
	r.Set("a", Unhealthy, "three", "")
	if c := r.Report().Conditions[0]; !c.Since.Equal(now) {
		t.Fatalf("new state: since %v, want %v", c.Since, now)
	}
}

func TestClearPrefixAndOrder(t *testing.T) {
	r := NewRegistry(nil)
	r.Set("resolver/a/0", Degraded, "x", "")
	r.Set("resolver/a/1", Degraded, "x", "")
	r.Set("resolver/b/0", Degraded, "x", "")
	r.Set("log", Unhealthy, "x", "")
	got := r.Report().Conditions
	want := []string{"log", "resolver/a/0", "resolver/a/1", "resolver/b/0"}
	for i := range want {
		if got[i].Component != want[i] {
			t.Fatalf("order %d: %s, want %s", i, got[i].Component, want[i])
		}
	}
	r.ClearPrefix("resolver/a/")
	if n := len(r.Report().Conditions); n != 2 {
		t.Fatalf("after ClearPrefix: %d conditions, want 2", n)
	}
}

// TestStopping: a shutdown makes the process unhealthy (/healthz 503)
// and is listed after the conditions that may have caused it, while
// wail_health_state keeps the state of the others (an ordinary shutdown
// does not page) and wail_shutting_down says 1.
func TestStopping(t *testing.T) {
	r := NewRegistry(prometheus.NewRegistry())
	r.Set("resolver/t/0", Degraded, "key parked", "")
	r.SetStopping("wail is shutting down", "wait")
	rep := r.Report()
	if rep.State != Unhealthy || r.State() != Unhealthy {
		t.Fatalf("stopping: state %s, want unhealthy", rep.State)
	}
	if g, s := testutil.ToFloat64(r.gauge), testutil.ToFloat64(r.stopping); g != float64(Degraded) || s != 1 {
		t.Fatalf("stopping: wail_health_state %v, wail_shutting_down %v; want 1 (degraded, the other condition) and 1", g, s)
	}
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "wail is shutting down") {
		t.Fatalf("/healthz while stopping: %d %q", w.Code, w.Body.String())
	}
	r.Set("store", Unhealthy, "disk full", "") // a fail-stop: the cause comes first
	rep = r.Report()
	if got := []string{rep.Conditions[0].Component, rep.Conditions[2].Component}; got[0] != "store" || got[1] != StoppingComponent {
		t.Fatalf("order %+v, want the store first, the shutdown last", rep.Conditions)
	}
	if g := testutil.ToFloat64(r.gauge); g != float64(Unhealthy) {
		t.Fatalf("a storage failure while stopping: wail_health_state %v, want 2", g)
	}
}

func TestHandler(t *testing.T) {
	cases := []struct {
		name     string
		set      func(*Registry)
		json     bool
		code     int
		contains string
	}{
		{"ok", func(*Registry) {}, false, 200, "ok\n"},
		{"degraded is served", func(r *Registry) { r.Set("resolver/t/0", Degraded, "key parked", "wail dlq ls t") }, false, 200,
			"degraded\ndegraded resolver/t/0: key parked (wail dlq ls t)\n"},
		{"unhealthy is 503", func(r *Registry) { r.Set("store", Unhealthy, "disk full", "") }, false, 503, "unhealthy\n"},
		{"json", func(r *Registry) { r.Set("store", Unhealthy, "disk full", "free space") }, true, 503, `"reason":"disk full"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewRegistry(nil)
			c.set(r)
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			if c.json {
				req.Header.Set("Accept", "application/json")
			}
			w := httptest.NewRecorder()
			r.Handler().ServeHTTP(w, req)
			if w.Code != c.code || !strings.Contains(w.Body.String(), c.contains) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body.String(), c.code, c.contains)
			}
			if c.json {
				var rep Report
				if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.State != Unhealthy || len(rep.Conditions) != 1 {
					t.Fatalf("decoded %+v, %v", rep, err)
				}
			}
		})
	}
}
