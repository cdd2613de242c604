package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/proxy"
)

// Overload control (DESIGN.md, "Overload"): every backlogEvery the
// process measures each table's backlog, the intents on the intent log
// past the resolver group's committed offsets, wherever the resolver
// runs, and hands it to the proxy's Admission, which refuses the table's
// writes while it is at proxy.max_backlog or more.

// backlogEvery is how often the backlogs are measured (a Bounds per
// partition and one Committed per table).
const backlogEvery = 250 * time.Millisecond

const overloadComponent = "proxy/overload"

// newBacklogGauge registers wail_proxy_backlog_intents on reg.
func newBacklogGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wail_proxy_backlog_intents",
		Help: "Intents logged past the resolver's committed offsets, per table: writes are refused (resource_exhausted) at proxy.max_backlog.",
	}, []string{"table"})
	reg.MustRegister(gauge)
	return gauge
}

// watchBacklog measures the backlogs until ctx ends.
func (s *Server) watchBacklog(ctx context.Context, a *proxy.Admission) {
	gauge := s.backlogGauge
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen := map[string]bool{}
		for _, tbl := range s.catalog.List() {
			if _, ok := s.catalog.Resolving(tbl.Name); !ok {
				continue
			}
			intents, committed, err := s.backlog(ctx, tbl.Name, tbl.Partitions)
			if err != nil {
				continue // the log is failing: writes fail on their own; keep the last measure
			}
			seen[tbl.Name] = true
			a.Observe(tbl.Name, intents, committed, time.Now())
			gauge.WithLabelValues(tbl.Name).Set(float64(intents))
		}
		for name := range known {
			if !seen[name] {
				a.Forget(name)
				gauge.DeleteLabelValues(name)
			}
		}
		known = seen
		s.reportOverload(a.Over())
	}
}

// backlog is a table's intents past the committed offsets, and the sum
// of those offsets.
func (s *Server) backlog(ctx context.Context, table string, partitions int32) (intents, committed int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, backlogEvery*4)
	defer cancel()
	topic := intent.Topic(table)
	offsets, err := s.log.Committed(ctx, s.cfg.Resolver.Group, topic)
	if err != nil {
		return 0, 0, err
	}
	for p := range partitions {
		start, end, err := s.log.Bounds(ctx, topic, p)
		if err != nil {
			return 0, 0, err
		}
		c, ok := offsets[p]
		if !ok || c < start {
			c = start // nothing committed yet, or retention passed it
		}
		intents += max(end-c, 0)
		committed += c
	}
	return intents, committed, nil
}

func (s *Server) reportOverload(over map[string]int64) {
	if len(over) == 0 {
		s.health.Clear(overloadComponent)
		return
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(over)) {
		parts = append(parts, fmt.Sprintf("%s (%d intents)", name, over[name]))
	}
	s.health.Set(overloadComponent, health.Degraded,
		fmt.Sprintf("writes to %s are refused (resource_exhausted): that many intents are logged and not yet published, at or over proxy.max_backlog (%d)",
			strings.Join(parts, ", "), s.cfg.Proxy.MaxBacklog),
		"the load is past what the resolver publishes: check wail_resolver_lag_intents and the resolver's health; "+
			"add resolvers (Kafka) or partitions, or slow the writers; raise proxy.max_backlog only to absorb longer bursts (events lag more)")
}
