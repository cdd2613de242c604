package console

import (
	"maps"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestQuantile: quantiles of cumulative buckets, as histogram_quantile
// computes them.
func TestQuantile(t *testing.T) {
	t.Parallel()
	bs := []bucket{{0.001, 0}, {0.002, 50}, {0.004, 90}, {0.008, 100}, {math.Inf(1), 100}}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.5, 0.002},    // the 50th of 100 is the last of (0.001, 0.002]
		{0.25, 0.0015},  // halfway into (0.001, 0.002]
		{0.99, 0.0076},  // 9/10 into (0.004, 0.008]
		{0.7, 0.003},    // halfway into (0.002, 0.004]
		{0.999, 0.0079}, // into the last finite bucket
	} {
		got := quantile(tc.q, bs)
		if got == nil || math.Abs(*got-tc.want) > 1e-4 {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(0.5, []bucket{{1, 0}, {math.Inf(1), 0}}); got != nil {
		t.Errorf("no observations: %v, want nil", *got)
	}
	inf := []bucket{{1, 0}, {2, 0}, {math.Inf(1), 10}}
	if got := quantile(0.5, inf); got == nil || *got != 2 {
		t.Errorf("all in +Inf: %v, want the highest finite bound", got)
	}
}

// TestSeries: the points of a table follow the registry: counters as they
// are, rates and quantiles over the interval, gauges per partition; the
// oldest points go beyond Keep.
func TestSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	writes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricWrites}, []string{"table", "result"})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricEvents}, []string{"table"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricLatency, Buckets: []float64{0.001, 0.01, 0.1}}, []string{"table"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricLag}, []string{"table", "partition"})
	reg.MustRegister(writes, events, lat, lag)
	s := newSeries(2)
	t0 := time.Unix(1000, 0)
	partWrites := map[string][]uint64{"t": {4, 6}}
	parts := func(table string) []uint64 { return partWrites[table] }
	writes.WithLabelValues("t", "stored").Add(10)
	writes.WithLabelValues("t", "rejected").Add(5) // not a write that was acknowledged
	if err := s.sample(reg, parts, t0); err != nil {
		t.Fatal(err)
	}
	writes.WithLabelValues("t", "stored").Add(18)
	writes.WithLabelValues("t", "superseded").Add(2)
	events.WithLabelValues("t").Add(4)
	for _, v := range []float64{0.0005, 0.005, 0.005, 0.05} {
		lat.WithLabelValues("t").Observe(v)
	}
	lag.WithLabelValues("t", "0").Set(7)
	lag.WithLabelValues("t", "1").Set(3)
	partWrites["t"] = []uint64{14, 12, 4} // a third partition since (altered)
	if err := s.sample(reg, parts, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	pts := s.snapshot()["t"]
	if len(pts) != 2 {
		t.Fatalf("%d points", len(pts))
	}
	p := pts[1]
	if p.WritesTotal != 30 || p.EventsTotal != 4 || p.WriteRate != 10 || p.EventRate != 2 {
		t.Errorf("point %+v: want 30 writes, 4 events, 10 writes/s, 2 events/s", p)
	}
	// p50: the 2nd of 4, halfway into (0.001, 0.01]; p99 in (0.01, 0.1].
	if p.P50 == nil || math.Abs(*p.P50-0.0055) > 1e-9 || p.P99 == nil || *p.P99 < 0.01 || *p.P99 > 0.1 {
		t.Errorf("p50 %v p99 %v", deref(p.P50), deref(p.P99))
	}
	want := map[string]PartitionPoint{"0": {Lag: 7, WritesTotal: 14, WriteRate: 5}, "1": {Lag: 3, WritesTotal: 12, WriteRate: 3},
		"2": {WritesTotal: 4, WriteRate: 2}}
	if !maps.Equal(p.Partitions, want) || p.Lag != 10 || p.PartitionWriteRate != 5 {
		t.Errorf("partitions %v (lag %v, busiest %v/s), want %v, lag 10, busiest 5/s", p.Partitions, p.Lag, p.PartitionWriteRate, want)
	}
	if pts[0].Partitions != nil {
		t.Errorf("an older point keeps its partitions: %v", pts[0].Partitions)
	}
	if err := s.sample(reg, parts, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	pts = s.snapshot()["t"]
	if len(pts) != 2 || !pts[1].At.Equal(t0.Add(3*time.Second)) || pts[1].P50 != nil || pts[1].WriteRate != 0 {
		t.Errorf("after a quiet interval, keeping 2: %+v", pts)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
