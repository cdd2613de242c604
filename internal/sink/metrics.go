package sink

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	delivered, retries, deadLettered *prometheus.CounterVec
	lag, lastError                   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"table", "sink"}
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_sink_delivered_events_total",
			Help: "Events a webhook sink delivered (the endpoint answered 2xx)."}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_sink_retries_total",
			Help: "Failed attempts of a webhook sink that were retried or gave up (5xx, timeouts, connection errors)."}, labels),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_sink_dead_lettered_events_total",
			Help: "Events a webhook sink gave up on and appended to its dead-letter topic."}, labels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wail_sink_lag_offsets",
			Help: "Offsets of a table's events a webhook sink has not delivered yet (offsets, not events)."}, labels),
		lastError: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wail_sink_last_error_timestamp_seconds",
			Help: "When a webhook sink last failed (an attempt or its session), unix seconds."}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retries, m.deadLettered, m.lag, m.lastError)
	}
	return m
}

// forget removes a dropped sink's series (its lag would stay at its last
// value for the life of the process).
func (m *metrics) forget(table, name string) {
	for _, c := range []*prometheus.CounterVec{m.delivered, m.retries, m.deadLettered} {
		c.DeleteLabelValues(table, name)
	}
	for _, g := range []*prometheus.GaugeVec{m.lag, m.lastError} {
		g.DeleteLabelValues(table, name)
	}
}
