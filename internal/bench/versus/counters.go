package versus

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wail-cdc/wail/internal/bench"
)

// counterSource is a pipeline that exports counters of its own (wail's
// /metrics): the resolver's reads per level, escalations and events, and
// the store's replica waits.
type counterSource interface {
	Counters(ctx context.Context) (map[string]float64, error)
}

// Names of the counters a step reports (Counters' keys).
const (
	ctrReads0      = "reads_level0"  // wail_resolver_reads_total{level="0"}
	ctrReadsAll    = "reads"         // wail_resolver_reads_total, all levels
	ctrEscalations = "escalations"   // wail_resolver_escalations_total
	ctrEvents      = "events"        // wail_resolver_events_total
	ctrWaits       = "replica_waits" // wail_store_replica_waits_total
	ctrStale       = "replica_stale" // wail_store_replica_stale_reads_total
)

// scrapeCounters reads url (Prometheus text) and sums the counters above
// over every table.
func scrapeCounters(ctx context.Context, url string) (map[string]float64, error) {
	var out map[string]float64
	err := bench.ReadMetrics(ctx, http.DefaultClient, url, func(r io.Reader) error {
		var err error
		out, err = parseCounters(r)
		return err
	})
	return out, err
}

func parseCounters(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	err := bench.EachSample(r, "wail_", func(name, labels, value string) error {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil // not a counter of ours, or not a number
		}
		switch name {
		case "wail_resolver_reads_total":
			out[ctrReadsAll] += v
			if strings.Contains(labels, `level="0"`) {
				out[ctrReads0] += v
			}
		case "wail_resolver_escalations_total":
			out[ctrEscalations] += v
		case "wail_resolver_events_total":
			out[ctrEvents] += v
		case "wail_store_replica_waits_total":
			out[ctrWaits] += v
		case "wail_store_replica_stale_reads_total":
			out[ctrStale] += v
		}
		return nil
	})
	return out, err
}

// diffCounters is after - before, key by key.
func diffCounters(before, after map[string]float64) map[string]float64 {
	if before == nil || after == nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// readStats derives reads per event and the escalation rate (escalations
// per read at level 0) of a step's counters; 0 when there were none.
func readStats(c map[string]float64) (readsPerEvent, escalationRate float64) {
	if c[ctrEvents] > 0 {
		readsPerEvent = c[ctrReadsAll] / c[ctrEvents]
	}
	if c[ctrReads0] > 0 {
		escalationRate = c[ctrEscalations] / c[ctrReads0]
	}
	return readsPerEvent, escalationRate
}
