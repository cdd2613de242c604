package console

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterer: what the console charts is registered on both
// registries, the rest on the main one only; unregistering removes from
// both; a collector the main registry refuses is on neither.
func TestRegisterer(t *testing.T) {
	t.Parallel()
	main := prometheus.NewRegistry()
	reg, charts := Registerer(main)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricEvents}, []string{"table"})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_other_total"}, []string{"table"})
	reg.MustRegister(events, other)
	events.WithLabelValues("t").Inc()
	other.WithLabelValues("t").Inc()
	names := func(g prometheus.Gatherer) map[string]bool {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, mf := range mfs {
			out[mf.GetName()] = true
		}
		return out
	}
	if n := names(charts); !n[metricEvents] || n["wail_other_total"] {
		t.Errorf("charts gather %v, want the events only", n)
	}
	if n := names(main); !n[metricEvents] || !n["wail_other_total"] {
		t.Errorf("main gathers %v, want both", n)
	}
	dup := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricEvents}, []string{"table"})
	if err := reg.Register(dup); err == nil {
		t.Fatal("a second collector of the same metric was taken")
	}
	if !reg.Unregister(events) {
		t.Fatal("unregister")
	}
	if n := names(charts); n[metricEvents] {
		t.Errorf("charts still gather the unregistered events: %v", n)
	}
}
