package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/readahead"
)

// newReadAhead returns the process's budget of events read ahead of
// event streams' clients (api.max_subscription_buffered_bytes; package
// readahead), shared by Subscribe streams and Consume members' sessions,
// and registers its metrics.
func newReadAhead(reg prometheus.Registerer, max int64) *readahead.Pool {
	p := readahead.NewPool(max)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wail_api_subscription_buffered_bytes",
			Help: "Bytes of events event streams (Subscribe, Consume, webhook sinks) hold read ahead of their clients, all together, up to about api.max_subscription_buffered_bytes."},
			func() float64 { return float64(p.Used()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wail_api_subscription_buffer_waits_total",
			Help: "Times an event stream's reader waited for its client to take what it holds because api.max_subscription_buffered_bytes were held (back-pressure, not an error)."},
			func() float64 { return float64(p.Waits()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wail_api_subscription_dropped_reads_total",
			Help: "Log reads (a snapshot's: store chunks) an event stream dropped, to read again once its client took what it holds, because api.max_subscription_buffered_bytes were held and the stream held events: so that what it read is not held uncounted (back-pressure, not an error; each is read twice)."},
			func() float64 { return float64(p.Drops()) }))
	return p
}
