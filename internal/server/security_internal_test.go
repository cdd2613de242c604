package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/health"
)

// TestCatalogTokensProblem: a catalog whose tokens cannot be read is
// degraded while the last read stays in use, and unhealthy (503) once
// bearer tokens are refused: a failed first read at the start, or a last
// read older than tokens_max_staleness. Each state is logged once; a good
// read clears it.
func TestCatalogTokensProblem(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &Server{logger: slog.New(slog.NewTextHandler(&logs, nil)), health: health.NewRegistry(prometheus.NewRegistry())}
	tell := s.catalogTokensProblem()
	cause := errors.New("connection refused")
	refused := fmt.Errorf("%w yet (%v)", auth.ErrTokensStale, cause)
	state := func() health.Report { return s.health.Report() }
	for i, step := range []struct {
		err       error
		want      health.State
		reason    string
		linesMore int
	}{
		{refused, health.Unhealthy, "bearer tokens are refused", 1}, // the first read at the start failed
		{refused, health.Unhealthy, "bearer tokens are refused", 0}, // logged once
		{nil, health.OK, "", 1},
		{cause, health.Degraded, "the last read stays in use", 1},
		{cause, health.Degraded, "the last read stays in use", 0},
		{refused, health.Unhealthy, "bearer tokens are refused", 1}, // past tokens_max_staleness
		{nil, health.OK, "", 1},
		{nil, health.OK, "", 0},
	} {
		before := strings.Count(logs.String(), "\n")
		tell(step.err)
		r := state()
		if r.State != step.want {
			t.Fatalf("step %d (%v): state %v, want %v: %+v", i, step.err, r.State, step.want, r)
		}
		if step.reason != "" && (len(r.Conditions) != 1 || !strings.Contains(r.Conditions[0].Reason, step.reason) ||
			!strings.Contains(r.Conditions[0].Reason, "connection refused")) {
			t.Fatalf("step %d: conditions %+v, want one naming %q and the cause", i, r.Conditions, step.reason)
		}
		if got := strings.Count(logs.String(), "\n") - before; got != step.linesMore {
			t.Fatalf("step %d: %d log lines, want %d:\n%s", i, got, step.linesMore, logs.String())
		}
	}
}
