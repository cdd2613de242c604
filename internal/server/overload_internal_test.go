package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/proxy"
)

// TestBacklogMeasureFails: a table over proxy.max_backlog whose backlog
// cannot be measured for a while keeps its last measure, so its writes
// stay refused (forgetting it admitted them all); proxy/backlog says so
// until the measures work again. A table that is gone is forgotten.
func TestBacklogMeasureFails(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := &Server{health: health.NewRegistry(reg), backlogGauge: newBacklogGauge(reg)}
	a := proxy.NewAdmission(100)
	fail := map[string]bool{}
	backlogs := map[string]int64{"t": 150, "u": 10}
	measure := func(_ context.Context, table string, _ int32) (int64, int64, error) {
		if fail[table] {
			return 0, 0, errors.New("coordinator not available")
		}
		return backlogs[table], 0, nil
	}
	tables := []backlogTable{{"t", 2}, {"u", 2}}
	ctx := context.Background()
	condition := func() *health.Condition {
		for _, c := range s.health.Report().Conditions {
			if c.Component == backlogComponent {
				return &c
			}
		}
		return nil
	}

	known := s.measureBacklogs(ctx, a, tables, map[string]bool{}, measure)
	if _, err := a.Admit("t"); !errors.Is(err, proxy.ErrOverloaded) {
		t.Fatalf("t over the limit admitted: %v", err)
	}
	fail["t"] = true
	for range 3 {
		known = s.measureBacklogs(ctx, a, tables, known, measure)
	}
	if _, err := a.Admit("t"); !errors.Is(err, proxy.ErrOverloaded) {
		t.Fatalf("after failed measures, t over the limit admitted: %v", err)
	}
	if c := condition(); c == nil || c.State != health.Degraded || !strings.Contains(c.Reason, "t cannot be measured") ||
		!strings.Contains(c.Reason, "coordinator not available") {
		t.Fatalf("condition %s: %+v", backlogComponent, c)
	}
	if a.Over()["t"] != 150 {
		t.Fatalf("Over lost t: %v", a.Over())
	}
	fail["t"], backlogs["t"] = false, 50
	known = s.measureBacklogs(ctx, a, tables, known, measure)
	if _, err := a.Admit("t"); err != nil || condition() != nil {
		t.Fatalf("measured again under the limit: admit %v, condition %+v", err, condition())
	}

	// A table never measured whose measure fails is not known; a table
	// that left the list is forgotten.
	fail["v"], backlogs["t"] = true, 150
	known = s.measureBacklogs(ctx, a, append(tables, backlogTable{"v", 1}), known, measure)
	if known["v"] || !known["t"] {
		t.Fatalf("known %v", known)
	}
	known = s.measureBacklogs(ctx, a, tables[1:], known, measure)
	if _, err := a.Admit("t"); err != nil || known["t"] {
		t.Fatalf("a table gone is still refused (%v) or known (%v)", err, known)
	}
}
