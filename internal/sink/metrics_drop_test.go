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

// sinkSeries returns the metric names that have a series of sink name.
func sinkSeries(t *testing.T, reg *prometheus.Registry, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == name {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return out
}

// TestSinkMetricsGoWithTheSink: a dropped sink's series leave
// /metrics. Its lag gauge stayed at its last value for the life of the
// process: a dashboard showed a sink that no longer exists falling
// behind, and an alert on the lag's level fired for ever.
func TestSinkMetricsGoWithTheSink(t *testing.T) {
	m, reg := retryingSink(t, "gone")
	defer m.Close()
	ctx := context.Background()
	if err := m.Drop(ctx, testTable, "gone"); err != nil {
		t.Fatal(err)
	}
	if got := sinkSeries(t, reg, "gone"); len(got) != 0 {
		t.Errorf("after the drop, /metrics still has the sink's series %v", got)
	}
}

// retryingSink starts a manager with a registry of its own and a sink
// name of table t whose endpoint refuses connections, and waits until the
// sink's lag and retries are in the registry.
func retryingSink(t *testing.T, name string) (*Manager, *prometheus.Registry) {
	t.Helper()
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
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: name, Url: "http://" + addr + "/x", Start: "beginning",
		BackoffMinMs: 5, BackoffMaxMs: 20}); err != nil {
		m.Close()
		t.Fatal(err)
	}
	f.publish(event("k", 1))
	waitFor(t, "the sink's lag and retries", 30*time.Second, func() bool { return len(sinkSeries(t, reg, name)) >= 3 })
	return m, reg
}
