package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestLatency: a latency histogram has the classic buckets and a native
// histogram; an observation lands in both.
func TestLatency(t *testing.T) {
	t.Parallel()
	h := Latency("x_seconds", "x", "table")
	h.WithLabelValues("t").Observe(0.003)
	var m dto.Metric
	if err := h.WithLabelValues("t").(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	hist := m.GetHistogram()
	if len(hist.GetBucket()) != len(LatencyBuckets) || hist.GetSampleCount() != 1 {
		t.Fatalf("classic: %d buckets, %d samples", len(hist.GetBucket()), hist.GetSampleCount())
	}
	if hist.GetSchema() == 0 && len(hist.GetPositiveSpan()) == 0 {
		t.Fatal("no native histogram")
	}
	if LatencyBuckets[0] != 0.0001 || LatencyBuckets[len(LatencyBuckets)-1] < 50 {
		t.Fatalf("buckets %v: want 100µs to over 50 s", LatencyBuckets)
	}
}
