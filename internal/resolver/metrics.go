package resolver

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// Metrics are the resolver's Prometheus collectors.
type Metrics struct {
	reads           *prometheus.CounterVec
	readErrors      *prometheus.CounterVec
	escalations     *prometheus.CounterVec
	events          *prometheus.CounterVec
	covered         *prometheus.CounterVec
	unmaterialized  *prometheus.CounterVec
	lateCommits     *prometheus.CounterVec
	invalid         *prometheus.CounterVec
	publishErrors   *prometheus.CounterVec
	commitErrors    *prometheus.CounterVec
	hangs           *prometheus.CounterVec
	lag             *prometheus.GaugeVec
	latency         *prometheus.HistogramVec
	retriesVec      *prometheus.CounterVec
	letters         *prometheus.CounterVec
	letterErrors    *prometheus.CounterVec
	lettersTooLarge *prometheus.CounterVec
	gapIntents      *prometheus.CounterVec
	parked          *prometheus.GaugeVec
	oldest          *prometheus.GaugeVec
	lagSeconds      *prometheus.GaugeVec
	// The parts of intent_to_event (see observeEvent).
	firstReadWait *prometheus.HistogramVec
	resolveTime   *prometheus.HistogramVec
	publishTime   *prometheus.HistogramVec
	readsPerEvent *prometheus.HistogramVec
	perEvent      *prometheus.HistogramVec
	readTime      *prometheus.HistogramVec
	// transactions (Kafka): transactions the member's pumps ran.
	transactions prometheus.Counter
	// Reads held until the proxy's store write landed (landing.go).
	landingHeld *prometheus.CounterVec
	landingWait *prometheus.HistogramVec
}

// NewMetrics registers the resolver's collectors on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_resolver_" + name, Help: help}, labels)
	}
	m := &Metrics{
		reads:          counter("reads_total", "Store reads by table and read level.", "table", "level"),
		readErrors:     counter("read_errors_total", "Store reads that failed.", "table"),
		escalations:    counter("escalations_total", "Reads at a stronger level because a cheaper one was stale or failed.", "table"),
		events:         counter("events_total", "Final events published.", "table"),
		covered:        counter("covered_intents_total", "Intents covered by published events (coalescing: covered/events).", "table"),
		unmaterialized: counter("unmaterialized_intents_total", "Intents whose version never became visible within the visibility window.", "table"),
		lateCommits:    counter("late_commits_total", "Intents reported unmaterialized whose version their recheck found in the store (resolver.recheck): writes that committed after the visibility window, published late.", "table"),
		invalid:        counter("invalid_intents_total", "Intent log records that could not be decoded and were skipped.", "table"),
		publishErrors:  counter("publish_errors_total", "Failed event bus appends (retried).", "table"),
		commitErrors:   counter("commit_errors_total", "Failed offset commits (retried).", "table"),
		hangs: counter("hanging_transactions_total",
			"Take-overs that found an event partition held by hanging Kafka transactions (their events are published again, then they are aborted).", "table"),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wail_resolver_lag_intents", Help: "Intents logged but not yet resolved, per partition.",
		}, []string{"table", "partition"}),
		latency: telemetry.Latency("wail_resolver_intent_to_event_seconds",
			"Histogram, per event: from the creation of the newest intent it covers to the event being durable on the bus.", "table"),
		retriesVec: counter("retries_total",
			"Failed store reads (kind=read) and event publishes (kind=publish) of a key that it tries again after a backoff.", "table", "kind"),
		letters: counter("dead_letters_total",
			"Dead-letter records written: intents settled without an event (kind=read, publish) and gaps (kind=gap: intents lost to retention or to a log repair).", "table", "kind"),
		letterErrors: counter("dead_letter_errors_total", "Failed appends of dead letters (retried; their intents wait).", "table"),
		lettersTooLarge: counter("dead_letters_too_large_total",
			"Appends of dead letters the dead-letter topic refused as too large although each was cut to its record limit "+
				"(a key nearly as large as the limit): the partition is unhealthy until the topic's limit is raised. "+
				"A limit lowered since it was read is read again and the letters cut to it, uncounted.", "table"),
		gapIntents: counter("gap_intents_total",
			"Intent offsets that log retention, or a repair of damaged log bytes, removed before the resolver resolved them (each gap is also a dead letter).", "table"),
		parked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wail_resolver_parked_keys", Help: "Keys whose store read or event publish failed and that wait to retry, per partition.",
		}, []string{"table", "partition"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wail_resolver_oldest_unresolved_seconds",
			Help: "How long the oldest unresolved intent of the partition has waited since the resolver read it (0: none).",
		}, []string{"table", "partition"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wail_resolver_lag_seconds",
			Help: "How far behind the resolver is, in time: the age (since its creation by the proxy) of the first unresolved intent it read, " +
				"or of the last intent it read while it has not read up to the log's end (0: caught up).",
		}, []string{"table", "partition"}),
		firstReadWait: telemetry.Latency("wail_resolver_first_read_wait_seconds",
			"Histogram, per event: from the creation of the oldest intent it covers to the first store read for it "+
				"(resolver.first_read_delay, plus queueing when the resolver is behind).", "table"),
		resolveTime: telemetry.Latency("wail_resolver_resolve_seconds",
			"Histogram, per event: from its first store read to the read that found its version (reads, escalations, backoff).", "table"),
		publishTime: telemetry.Latency("wail_resolver_publish_seconds",
			"Histogram, per event: from the read that found its version to it being durable on the bus (queue and append).", "table"),
		readsPerEvent: telemetry.Count("wail_resolver_reads_per_event",
			"Histogram: store reads it took to resolve an event (1: the first read found it; more: escalations, backoff rounds, retries).", "table"),
		perEvent: telemetry.Count("wail_resolver_intents_per_event",
			"Histogram: intents an event covers (coalescing: above 1 when a key changed again before its event).", "table"),
		readTime: telemetry.Latency("wail_resolver_read_seconds",
			"Histogram: store reads of the resolver by read level, until the store answered (or failed); each key of a batched read (GetMany) counts the whole call.", "table", "level"),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "wail_resolver_transactions_total",
			Help: "Kafka transactions the resolver ran (events and offsets of all its partitions that were ready; resolver.transaction_linger spaces them)."}),
		landingHeld: counter("landing_held_reads_total",
			"Store reads held until the proxy's store write of their version ended (outcome=landed) or the hold bound passed (outcome=bound); of the landed ones, those answered with the row the write stored instead of a store read (outcome=handed_over).", "table", "outcome"),
		landingWait: telemetry.Latency("wail_resolver_landing_wait_seconds",
			"Histogram, per awaited store write: how long the reads held on it waited (until it ended or the hold bound passed).", "table"),
	}
	if reg != nil {
		reg.MustRegister(m.landingHeld, m.landingWait)
		reg.MustRegister(m.reads, m.readErrors, m.escalations, m.events, m.covered, m.unmaterialized, m.lateCommits,
			m.invalid, m.publishErrors, m.commitErrors, m.hangs, m.lag, m.latency,
			m.retriesVec, m.letters, m.letterErrors, m.lettersTooLarge, m.gapIntents, m.parked, m.oldest, m.lagSeconds,
			m.firstReadWait, m.resolveTime, m.publishTime, m.readsPerEvent, m.perEvent, m.readTime, m.transactions)
	}
	return m
}

// partitionMetrics are the collectors of one partition, labels resolved once.
type partitionMetrics struct {
	reads           []prometheus.Counter
	readErrors      prometheus.Counter
	escalations     prometheus.Counter
	events          prometheus.Counter
	covered         prometheus.Counter
	unmaterialized  prometheus.Counter
	lateCommits     prometheus.Counter
	invalid         prometheus.Counter
	publishErrors   prometheus.Counter
	commitErrors    prometheus.Counter
	lag             prometheus.Gauge
	latency         prometheus.Observer
	readRetries     prometheus.Counter
	pubRetries      prometheus.Counter
	readLetters     prometheus.Counter
	pubLetters      prometheus.Counter
	letterErrors    prometheus.Counter
	lettersTooLarge prometheus.Counter
	parked          prometheus.Gauge
	oldest          prometheus.Gauge
	lagSeconds      prometheus.Gauge
	firstReadWait   prometheus.Observer
	resolveTime     prometheus.Observer
	publishTime     prometheus.Observer
	readsPerEvent   prometheus.Observer
	perEvent        prometheus.Observer
	readTime        []prometheus.Observer // by level
	heldLanded      prometheus.Counter
	heldBound       prometheus.Counter
	handedOver      prometheus.Counter
	landingWait     prometheus.Observer
}

func (m *Metrics) partition(table string, p int32, levels int) *partitionMetrics {
	pm := &partitionMetrics{
		readErrors:      m.readErrors.WithLabelValues(table),
		escalations:     m.escalations.WithLabelValues(table),
		events:          m.events.WithLabelValues(table),
		covered:         m.covered.WithLabelValues(table),
		unmaterialized:  m.unmaterialized.WithLabelValues(table),
		lateCommits:     m.lateCommits.WithLabelValues(table),
		invalid:         m.invalid.WithLabelValues(table),
		publishErrors:   m.publishErrors.WithLabelValues(table),
		commitErrors:    m.commitErrors.WithLabelValues(table),
		lag:             m.lag.WithLabelValues(table, strconv.Itoa(int(p))),
		latency:         m.latency.WithLabelValues(table),
		readRetries:     m.retriesVec.WithLabelValues(table, "read"),
		pubRetries:      m.retriesVec.WithLabelValues(table, "publish"),
		readLetters:     m.letters.WithLabelValues(table, "read"),
		pubLetters:      m.letters.WithLabelValues(table, "publish"),
		letterErrors:    m.letterErrors.WithLabelValues(table),
		lettersTooLarge: m.lettersTooLarge.WithLabelValues(table),
		parked:          m.parked.WithLabelValues(table, strconv.Itoa(int(p))),
		oldest:          m.oldest.WithLabelValues(table, strconv.Itoa(int(p))),
		lagSeconds:      m.lagSeconds.WithLabelValues(table, strconv.Itoa(int(p))),
		firstReadWait:   m.firstReadWait.WithLabelValues(table),
		resolveTime:     m.resolveTime.WithLabelValues(table),
		publishTime:     m.publishTime.WithLabelValues(table),
		readsPerEvent:   m.readsPerEvent.WithLabelValues(table),
		perEvent:        m.perEvent.WithLabelValues(table),
		heldLanded:      m.landingHeld.WithLabelValues(table, "landed"),
		heldBound:       m.landingHeld.WithLabelValues(table, "bound"),
		handedOver:      m.landingHeld.WithLabelValues(table, "handed_over"),
		landingWait:     m.landingWait.WithLabelValues(table),
	}
	for l := 0; l < levels; l++ {
		pm.reads = append(pm.reads, m.reads.WithLabelValues(table, strconv.Itoa(l)))
		pm.readTime = append(pm.readTime, m.readTime.WithLabelValues(table, strconv.Itoa(l)))
	}
	return pm
}

func (m *partitionMetrics) observeRead(level int, r ReadResult) {
	if level < len(m.reads) {
		m.reads[level].Inc()
		m.readTime[level].Observe(r.Took.Seconds())
	}
	if r.Err != nil {
		m.readErrors.Inc()
	}
}

// observeEvent counts an event durable on the bus at now. Its latency
// from the newest intent it covers goes to intent_to_event; the parts,
// from the oldest intent pending when its first read was asked, add up:
// first_read_wait + resolve + publish.
func (m *partitionMetrics) observeEvent(e *intent.Event, st EventStats, now time.Time) {
	m.events.Inc()
	m.covered.Add(float64(e.CoveredIntents))
	m.perEvent.Observe(float64(e.CoveredIntents))
	if !e.IntentAt.IsZero() {
		m.latency.Observe(now.Sub(e.IntentAt).Seconds())
	}
	if st.Reads == 0 {
		return // not resolved by a read of its own (stats unknown)
	}
	m.readsPerEvent.Observe(float64(st.Reads))
	if !st.FirstCreated.IsZero() {
		m.firstReadWait.Observe(max(st.FirstRead.Sub(st.FirstCreated), 0).Seconds())
	}
	m.resolveTime.Observe(e.ResolvedAt.Sub(st.FirstRead).Seconds())
	m.publishTime.Observe(now.Sub(e.ResolvedAt).Seconds())
}

func (m *partitionMetrics) retries(read, publish int) {
	if read > 0 {
		m.readRetries.Add(float64(read))
	}
	if publish > 0 {
		m.pubRetries.Add(float64(publish))
	}
}

func (m *partitionMetrics) deadLetters(k LetterKind) prometheus.Counter {
	if k == LetterRead {
		return m.readLetters
	}
	return m.pubLetters
}

// gap counts a gap of n intent offsets (retention, a repair).
func (m *Metrics) gap(table string, n int64) {
	m.letters.WithLabelValues(table, "gap").Inc()
	m.gapIntents.WithLabelValues(table).Add(float64(n))
}
