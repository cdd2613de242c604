package latency

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// MaxLatency is the largest latency the histograms hold; larger ones are
// recorded as MaxLatency.
const MaxLatency = time.Hour

// NewHistogram returns a histogram of latencies in microseconds, from 1µs to
// MaxLatency, with 3 significant digits.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, MaxLatency.Microseconds(), 3)
}

// clamp bounds d to [1µs, MaxLatency].
func clamp(d time.Duration) time.Duration {
	return min(max(d, time.Microsecond), MaxLatency)
}

// Record records d, clamped to [1µs, MaxLatency], in h (a NewHistogram).
func Record(h *hdrhistogram.Histogram, d time.Duration) {
	RecordN(h, d, 1)
}

// RecordN records d n times, clamped to [1µs, MaxLatency], in h (a
// NewHistogram).
func RecordN(h *hdrhistogram.Histogram, d time.Duration, n int64) {
	_ = h.RecordValues(clamp(d).Microseconds(), n)
}

// Percentiles summarize a latency histogram, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns the percentiles of h, a histogram in microseconds; all
// zero when h is empty.
func Summarize(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}
