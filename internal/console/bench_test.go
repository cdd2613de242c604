package console

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/telemetry"
)

// BenchmarkSample is the console's cost on the server: one sample of a
// registry shaped like a busy server's (20 tables of 8 partitions, each
// table with the proxy's and the resolver's latency histograms), of the
// metrics it charts (Registerer). The console takes one a second.
func BenchmarkSample(b *testing.B) {
	reg, charts := Registerer(prometheus.NewRegistry())
	writes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricWrites}, []string{"table", "result"})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricEvents}, []string{"table"})
	var gauges []*prometheus.GaugeVec
	for _, n := range []string{metricLag, metricLagSec, metricOldest, "parked"} {
		gauges = append(gauges, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n}, []string{"table", "partition"}))
	}
	var hists []*prometheus.HistogramVec
	for _, n := range []string{metricLatency, "a", "b", "c", "d", "e", "f", "g", "h"} {
		hists = append(hists, telemetry.Latency(n, n, "table"))
	}
	reg.MustRegister(writes, events)
	for _, g := range gauges {
		reg.MustRegister(g)
	}
	for _, h := range hists {
		reg.MustRegister(h)
	}
	for tb := range 20 {
		table := "table_" + strconv.Itoa(tb)
		for _, r := range []string{"stored", "superseded", "unlogged", "rejected"} {
			writes.WithLabelValues(table, r).Add(1000)
		}
		events.WithLabelValues(table).Add(1000)
		for p := range 8 {
			for _, g := range gauges {
				g.WithLabelValues(table, strconv.Itoa(p)).Set(3)
			}
		}
		for _, h := range hists {
			for i := range 100 {
				h.WithLabelValues(table).Observe(float64(i) / 1000)
			}
		}
	}
	// Writes by partition as the proxy counts them: 8 per table.
	partWrites := func(string) []uint64 { return []uint64{1, 2, 3, 4, 5, 6, 7, 8} }
	s := newSeries(300)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Second)
		if err := s.sample(charts, partWrites, now); err != nil {
			b.Fatal(err)
		}
	}
}
