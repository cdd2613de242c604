package console

import (
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The metrics the live charts are computed from (docs/operations.md).
const (
	metricWrites  = "wail_proxy_mutations_total"
	metricEvents  = "wail_resolver_events_total"
	metricLatency = "wail_resolver_intent_to_event_seconds"
	metricLag     = "wail_resolver_lag_intents"
	metricLagSec  = "wail_resolver_lag_seconds"
	metricOldest  = "wail_resolver_oldest_unresolved_seconds"
)

// Point is one sample of one table: rates and latencies over the
// interval since the previous sample, gauges as they were.
type Point struct {
	At time.Time `json:"at"`
	// Counters as /metrics shows them at At: acknowledged writes
	// (stored, superseded, unlogged) and events.
	WritesTotal float64 `json:"writes_total"`
	EventsTotal float64 `json:"events_total"`
	// Rates per second over the interval.
	WriteRate float64 `json:"write_rate"`
	EventRate float64 `json:"event_rate"`
	// P50 and P99 of the write-to-event latency of the events of the
	// interval, in seconds (NaN when there were none: null in JSON).
	P50 *float64 `json:"p50"`
	P99 *float64 `json:"p99"`
	// The partitions summed up, in every point (the charts): lag in
	// intents of all, the highest lag in seconds and oldest unresolved
	// intent's wait, the busiest partition's write rate.
	Lag                float64 `json:"lag"`
	LagSeconds         float64 `json:"lag_seconds"`
	Oldest             float64 `json:"oldest"`
	PartitionWriteRate float64 `json:"partition_write_rate_max"`
	// Partitions by number, in the newest point only: a table may have
	// limits.max_table_partitions (1024) of them, and Keep points of each
	// would make every poll megabytes.
	Partitions map[string]PartitionPoint `json:"partitions,omitempty"`
}

// PartitionPoint is one partition in a Point.
type PartitionPoint struct {
	// Acknowledged writes counted in this process (proxy.PartitionWrites,
	// not a Prometheus series) and their rate over the interval.
	WritesTotal uint64  `json:"writes_total"`
	WriteRate   float64 `json:"write_rate"`
	// Lag in intents and seconds, the oldest unresolved intent's wait.
	Lag        float64 `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	Oldest     float64 `json:"oldest"`
}

// tableSample is what one gather says of a table.
type tableSample struct {
	writes, events float64
	buckets        []bucket // cumulative, by upper bound
	lag, lagSec    map[string]float64
	oldest         map[string]float64
	partWrites     []uint64 // by partition
}

type bucket struct {
	upper float64
	count float64
}

// series keeps the last points of every table.
type series struct {
	mu     sync.Mutex
	max    int
	last   map[string]tableSample
	lastAt time.Time
	points map[string][]Point
}

func newSeries(max int) *series {
	return &series{max: max, last: map[string]tableSample{}, points: map[string][]Point{}}
}

// sample gathers g at now and appends a point per table; partWrites
// (nil: none) gives a table's writes by partition.
func (s *series) sample(g prometheus.Gatherer, partWrites func(table string) []uint64, now time.Time) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	cur := parse(mfs)
	if partWrites != nil {
		for table, ts := range cur {
			ts.partWrites = partWrites(table)
			cur[table] = ts
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := now.Sub(s.lastAt).Seconds()
	for table, ts := range cur {
		p := Point{At: now, WritesTotal: ts.writes, EventsTotal: ts.events}
		prev, hasPrev := s.last[table]
		hasPrev = hasPrev && dt > 0
		if hasPrev {
			p.WriteRate = max(ts.writes-prev.writes, 0) / dt
			p.EventRate = max(ts.events-prev.events, 0) / dt
			d := delta(ts.buckets, prev.buckets)
			p.P50, p.P99 = quantile(0.5, d), quantile(0.99, d)
		}
		p.Partitions = map[string]PartitionPoint{}
		part := func(k string) PartitionPoint { return p.Partitions[k] }
		for k, v := range ts.lag {
			pp := part(k)
			pp.Lag = v
			p.Partitions[k] = pp
			p.Lag += v
		}
		for k, v := range ts.lagSec {
			pp := part(k)
			pp.LagSeconds = v
			p.Partitions[k] = pp
			p.LagSeconds = max(p.LagSeconds, v)
		}
		for k, v := range ts.oldest {
			pp := part(k)
			pp.Oldest = v
			p.Partitions[k] = pp
			p.Oldest = max(p.Oldest, v)
		}
		for i, n := range ts.partWrites {
			k := strconv.Itoa(i)
			pp := part(k)
			pp.WritesTotal = n
			if hasPrev {
				var before uint64
				if i < len(prev.partWrites) {
					before = prev.partWrites[i]
				}
				if n >= before {
					pp.WriteRate = float64(n-before) / dt
				}
			}
			if n > 0 || pp != (PartitionPoint{}) {
				p.Partitions[k] = pp
			}
			p.PartitionWriteRate = max(p.PartitionWriteRate, pp.WriteRate)
		}
		pts := s.points[table]
		if len(pts) > 0 {
			pts[len(pts)-1].Partitions = nil // the newest point only
		}
		pts = append(pts, p)
		if len(pts) > s.max {
			pts = append(pts[:0:0], pts[len(pts)-s.max:]...)
		}
		s.points[table] = pts
	}
	s.last, s.lastAt = cur, now
	return nil
}

// snapshot returns a copy of the points of every table.
func (s *series) snapshot() map[string][]Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Point, len(s.points))
	for t, pts := range s.points {
		out[t] = append([]Point(nil), pts...)
	}
	return out
}

func parse(mfs []*dto.MetricFamily) map[string]tableSample {
	out := map[string]tableSample{}
	get := func(table string) tableSample {
		ts, ok := out[table]
		if !ok {
			ts = tableSample{lag: map[string]float64{}, lagSec: map[string]float64{}, oldest: map[string]float64{}}
		}
		return ts
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			table := labels["table"]
			if table == "" {
				continue
			}
			switch mf.GetName() {
			case metricWrites:
				if r := labels["result"]; r == "stored" || r == "superseded" || r == "unlogged" {
					ts := get(table)
					ts.writes += m.GetCounter().GetValue()
					out[table] = ts
				}
			case metricEvents:
				ts := get(table)
				ts.events += m.GetCounter().GetValue()
				out[table] = ts
			case metricLatency:
				ts := get(table)
				for _, b := range m.GetHistogram().GetBucket() {
					ts.buckets = append(ts.buckets, bucket{upper: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
				}
				ts.buckets = append(ts.buckets, bucket{upper: math.Inf(1), count: float64(m.GetHistogram().GetSampleCount())})
				out[table] = ts
			case metricLag, metricLagSec, metricOldest:
				ts := get(table)
				dst := map[string]map[string]float64{metricLag: ts.lag, metricLagSec: ts.lagSec, metricOldest: ts.oldest}[mf.GetName()]
				dst[labels["partition"]] = m.GetGauge().GetValue()
				out[table] = ts
			}
		}
	}
	return out
}

// delta is cur - prev, bucket by bucket (prev empty or of another
// shape: cur).
func delta(cur, prev []bucket) []bucket {
	d := append([]bucket(nil), cur...)
	if len(prev) != len(cur) {
		return d
	}
	for i := range d {
		d[i].count = max(d[i].count-prev[i].count, 0)
	}
	return d
}

// quantile estimates the q-quantile of cumulative buckets as
// Prometheus's histogram_quantile does: linear within the bucket, the
// highest finite bound for the +Inf bucket; nil without observations.
func quantile(q float64, bs []bucket) *float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return nil
	}
	total := bs[len(bs)-1].count
	rank := q * total
	i := sort.Search(len(bs), func(i int) bool { return bs[i].count >= rank })
	var v float64
	switch {
	case math.IsInf(bs[i].upper, 1):
		v = bs[max(i-1, 0)].upper
	default:
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bs[i-1].upper, bs[i-1].count
		}
		inBucket := bs[i].count - below
		v = bs[i].upper
		if inBucket > 0 {
			v = lower + (bs[i].upper-lower)*(rank-below)/inBucket
		}
	}
	return &v
}
