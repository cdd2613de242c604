package proxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors.
type Metrics struct {
	mutations    *prometheus.CounterVec
	intentErrors prometheus.Counter
	storeErrors  *prometheus.CounterVec
	abortErrors  prometheus.Counter
	slowAppends  prometheus.Counter
	mergeWaits   prometheus.Counter
	merged       prometheus.Histogram
	lateWrites   prometheus.Counter
}

// NewMetrics registers the proxy's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wail_proxy_mutations_total", Help: "Mutations by table and result (stored, superseded, unlogged, rejected).",
		}, []string{"table", "result"}),
		intentErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_intent_append_errors_total", Help: "Intent log appends that failed.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wail_proxy_store_write_errors_total",
			Help: "Store writes that failed, by outcome: not_applied (the store says so; an ABORT follows if the intent was logged) or unknown (it may have been stored).",
		}, []string{"outcome"}),
		abortErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_abort_append_errors_total", Help: "ABORT intents that could not be logged.",
		}),
		slowAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_slow_intent_appends_total", Help: "Intent appends that took over half the visibility window (cut off, or refused after it).",
		}),
		mergeWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_merge_waits_total",
			Help: "Writes that waited because proxy.writes_in_flight batches of their table ran, and were merged with others.",
		}),
		merged: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wail_proxy_merged_writes", Help: "Write requests merged into one intent append and one store write (merged batches only).",
			Buckets: prometheus.ExponentialBuckets(2, 2, 10),
		}),
		lateWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wail_proxy_late_writes_total",
			Help: "Write requests refused unwritten because they waited in a merge queue past the stamp bound (5 s): the store or the log is too slow for the load.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.mutations, m.intentErrors, m.storeErrors, m.abortErrors, m.slowAppends, m.mergeWaits, m.merged, m.lateWrites)
	}
	return m
}

func (m *Metrics) observe(muts []Mutation, res []Result) {
	for i := range res {
		r := &res[i]
		result := "stored"
		switch {
		case r.Err != nil:
			result = "rejected"
		case !r.IntentLogged:
			result = "unlogged"
		case r.Superseded:
			result = "superseded"
		}
		table := muts[i].Table
		if errors.Is(r.Err, ErrUnknownTable) {
			table = "" // never a label per name a client made up
		}
		m.mutations.WithLabelValues(table, result).Inc()
	}
}
