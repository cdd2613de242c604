package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
)

// TestClockSkewAlert: a lead over proxy.clock_skew_alert is counted,
// logged once a minute, and reported degraded until ten minutes pass
// without one.
func TestClockSkewAlert(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	cfg := config.Default()
	cfg.DataDir = t.TempDir() // New opens the embedded log and store
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s.checkClock(t0, 500*time.Millisecond)
	if s.Health().State() != health.OK || testutil.ToFloat64(s.clockWatch.behind) != 0 || logs.Len() != 0 {
		t.Fatal("a lead under the alert raised it")
	}
	s.checkClock(t0.Add(5*time.Second), 2500*time.Millisecond)
	s.checkClock(t0.Add(10*time.Second), 2*time.Second)
	rep := s.Health().Report()
	if rep.State != health.Degraded || !strings.Contains(rep.Conditions[0].Reason, "ran 2s ahead of this host's clock") {
		t.Fatalf("health %+v", rep)
	}
	if n := testutil.ToFloat64(s.clockWatch.behind); n != 2 {
		t.Fatalf("counted %v windows, want 2", n)
	}
	if n := strings.Count(logs.String(), "check time sync"); n != 1 {
		t.Fatalf("%d warnings within a minute, want 1:\n%s", n, logs.String())
	}
	if g := testutil.ToFloat64(s.clockWatch.lead); g != 2 {
		t.Fatalf("gauge %v, want 2", g)
	}
	s.checkClock(t0.Add(5*time.Minute), 0)
	if s.Health().State() != health.Degraded {
		t.Fatal("cleared after 5 minutes")
	}
	s.checkClock(t0.Add(11*time.Minute), 0)
	if s.Health().State() != health.OK {
		t.Fatalf("not cleared after 10 quiet minutes: %+v", s.Health().Report())
	}
}
