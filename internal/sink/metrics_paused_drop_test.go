package sink

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkMetricsGoWhenDroppedStopped: a sink dropped while it was not
// running (paused, or its table no longer served here) loses its series
// too. Sync forgot only the series of a runner it stopped at the drop, so
// a sink paused first (its runner stopped then, the sink still defined)
// kept its lag and retries in /metrics for the life of the process.
func TestSinkMetricsGoWhenDroppedStopped(t *testing.T) {
	f := newFixture(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused: the sink retries, its lag stays
	reg := prometheus.NewRegistry()
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond, Registerer: reg,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	ctx := context.Background()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "paused", Url: "http://" + addr + "/x", Start: "beginning",
		BackoffMinMs: 5, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("k", 1))
	waitFor(t, "the sink's lag and retries", 30*time.Second, func() bool { return len(sinkSeries(t, reg, "paused")) >= 3 })
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
