package proxy

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/telemetry"
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
	// The latency of a table's part of a write: the whole of it (what the
	// client waits for, less the API), and its two steps.
	writeTime  *prometheus.HistogramVec
	appendTime *prometheus.HistogramVec
	storeTime  *prometheus.HistogramVec
	byTable    sync.Map // table name -> *tableMetrics
	// partitions counts acknowledged writes per partition (partitions.go).
	partitions PartitionWrites
}

// PartitionWrites returns the per-partition write counters (the console
// samples them).
func (m *Metrics) PartitionWrites() *PartitionWrites { return &m.partitions }

// tableMetrics are the latency observers of a table, labels resolved once.
type tableMetrics struct {
	write, append, store prometheus.Observer
}

func (m *Metrics) table(name string) *tableMetrics {
	if tm, ok := m.byTable.Load(name); ok {
		return tm.(*tableMetrics)
	}
	tm, _ := m.byTable.LoadOrStore(name, &tableMetrics{
		write: m.writeTime.WithLabelValues(name), append: m.appendTime.WithLabelValues(name), store: m.storeTime.WithLabelValues(name),
	})
	return tm.(*tableMetrics)
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
			Help: "Writes (of one table of a request) refused unwritten because they could not be stamped within the stamp bound (5 s) of their arrival (a merge queue, or the request's other tables before them), or before the stamp_before their client set (they reached the server late): the store or the log is too slow for the load, or the network held them.",
		}),
		writeTime: telemetry.Latency("wail_proxy_write_seconds",
			"Histogram: the proxy's part of a write of a table's mutations, from stamping versions to the answer (intent append plus store write).", "table"),
		appendTime: telemetry.Latency("wail_proxy_intent_append_seconds",
			"Histogram: intent log appends of a table's mutations, until durable (or failed, or cut off at half the visibility window).", "table"),
		storeTime: telemetry.Latency("wail_proxy_store_write_seconds",
			"Histogram: store writes of a table's mutations, until the store answered (or failed).", "table"),
	}
	if reg != nil {
		reg.MustRegister(m.mutations, m.intentErrors, m.storeErrors, m.abortErrors, m.slowAppends,
			m.writeTime, m.appendTime, m.storeTime, m.mergeWaits, m.merged, m.lateWrites)
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
