package group

import "github.com/prometheus/client_golang/prometheus"

// RetentionGaps counts the retention gaps event streams meet: offsets
// retention removed before a stream read them (a Subscribe stream, a
// consumer group's member, a webhook sink), each told to its reader
// in-band. Its methods do nothing on a nil *RetentionGaps.
type RetentionGaps struct {
	gaps, skipped *prometheus.CounterVec
}

// NewRetentionGaps returns the counters of retention gaps, registered
// with reg (nil: none). Register them once per process: every stream
// (eventbus.Service, Groups) counts into the same.
func NewRetentionGaps(reg prometheus.Registerer) *RetentionGaps {
	r := &RetentionGaps{
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_stream_retention_gaps_total",
			Help: "Retention gaps event streams met: a partition's offsets that retention (log.event_retention) removed before the stream read them, " +
				"each skipped (the reader is told: SubscribeResponse.gap, ConsumeResponse.gap) or failing a stream that asked so (fail_on_gap). " +
				"group is the consumer group (or webhook sink's group), empty for Subscribe streams."},
			[]string{"table", "group"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wail_stream_retention_skipped_offsets_total",
			Help: "Offsets of those retention gaps (offsets are not dense: an upper bound of the events a reader missed), " +
				"by table and consumer group (empty for Subscribe streams)."},
			[]string{"table", "group"}),
	}
	if reg != nil {
		reg.MustRegister(r.gaps, r.skipped)
	}
	return r
}

// Add counts a gap of offsets [from, to) a stream of table met; group is
// the consumer group's name ("" for a Subscribe stream).
func (r *RetentionGaps) Add(table, group string, from, to int64) {
	if r == nil {
		return
	}
	r.gaps.WithLabelValues(table, group).Inc()
	if to > from {
		r.skipped.WithLabelValues(table, group).Add(float64(to - from))
	}
}

// WithRetentionGaps makes the groups' members count the retention gaps
// they meet into r. Call it before members join.
func (g *Groups) WithRetentionGaps(r *RetentionGaps) *Groups {
	g.gapCount = r
	return g
}
