package sink

import (
	"context"
	"testing"
)

// TestSinkMetricsGoWhenDroppedStopped: a sink dropped while it was not
// running (paused, or its table no longer served here) loses its series
// too. Sync forgot only the series of a runner it stopped at the drop, so
// a sink paused first (its runner stopped then, the sink still defined)
// kept its lag and retries in /metrics for the life of the process.
func TestSinkMetricsGoWhenDroppedStopped(t *testing.T) {
	m, reg := retryingSink(t, "paused")
	defer m.Close()
	ctx := context.Background()
	if _, err := m.SetPaused(ctx, testTable, "paused", true); err != nil {
		t.Fatal(err)
	}
	if err := m.Drop(ctx, testTable, "paused"); err != nil {
		t.Fatal(err)
	}
	if got := sinkSeries(t, reg, "paused"); len(got) != 0 {
		t.Errorf("after the drop of the paused sink, /metrics still has its series %v", got)
	}
}
