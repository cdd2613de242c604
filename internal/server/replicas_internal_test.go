package server

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// TestReportReplicas: a bypassed replica makes store/replicas degraded,
// naming it; none clears it.
func TestReportReplicas(t *testing.T) {
	s := &Server{health: health.NewRegistry(prometheus.NewRegistry())}
	steps := []struct {
		bypassed []error
		want     health.State
		names    []string
	}{
		{nil, health.OK, nil},
		{[]error{&sqlstore.Bypassed{Level: "replica-1", Addr: "r1:5432", Until: time.Now(), Last: "i/o timeout"}}, health.Degraded, []string{"replica-1 (r1:5432)", "i/o timeout", "1 store replica(s)"}},
		{nil, health.OK, nil},
	}
	for i, st := range steps {
		s.reportReplicas(st.bypassed)
		var got *health.Condition
		for _, c := range s.health.Report().Conditions {
			if c.Component == replicasComponent {
				got = &c
			}
		}
		switch {
		case st.want == health.OK && got != nil:
			t.Errorf("step %d: condition %+v, want none", i, *got)
		case st.want != health.OK && (got == nil || got.State != st.want):
			t.Errorf("step %d: condition %+v, want %s", i, got, st.want)
		case got != nil:
			for _, n := range st.names {
				if !strings.Contains(got.Reason, n) {
					t.Errorf("step %d: reason %q does not name %q", i, got.Reason, n)
				}
			}
		}
	}
}
