package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LatencyBuckets are the classic buckets of wail's latency histograms, in
// seconds: 100µs doubling to about 52s, which spans an embedded append
// (tens of µs to a ms) up to a resolution that waits out a visibility
// window.
var LatencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 20)

// CountBuckets are the buckets of histograms of small counts (reads per
// event, intents per event): 1, 2, 4, ... 4096.
var CountBuckets = prometheus.ExponentialBuckets(1, 2, 13)

// Latency returns a histogram of durations in seconds with both classic
// buckets (LatencyBuckets) and a native histogram (10% resolution), so
// that a Prometheus scraping protobuf gets exact quantiles and any other
// scraper the classic buckets.
func Latency(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: LatencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, labels)
}

// Count returns a histogram of small counts (CountBuckets).
func Count(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: CountBuckets}, labels)
}
