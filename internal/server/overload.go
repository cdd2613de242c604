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

const (
	overloadComponent = "proxy/overload"
	backlogComponent  = "proxy/backlog"
)

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
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var tables []backlogTable
		for _, tbl := range s.catalog.List() {
			if _, ok := s.catalog.Resolving(tbl.Name); ok {
				tables = append(tables, backlogTable{tbl.Name, tbl.Partitions})
			}
		}
		known = s.measureBacklogs(ctx, a, tables, known, s.backlog)
	}
}

// backlogTable is a table whose backlog is measured.
type backlogTable struct {
	name       string
	partitions int32
}

// measureBacklogs measures the backlog of tables once (measure) and hands
// each to a; it forgets the tables of known that are gone, and returns
// the tables it measured now or before. A table whose measure failed
// keeps its last one: the failure says nothing about the backlog, and
// forgetting it would admit every write of a table that is over the limit
// (the backlog is hardest to measure when the log is loaded most). The
// condition proxy/backlog says so until every measure works again.
func (s *Server) measureBacklogs(ctx context.Context, a *proxy.Admission, tables []backlogTable, known map[string]bool,
	measure func(ctx context.Context, table string, partitions int32) (intents, committed int64, err error)) map[string]bool {
	seen := map[string]bool{}
	var failed []string
	var lastErr error
	for _, tbl := range tables {
		intents, committed, err := measure(ctx, tbl.name, tbl.partitions)
		if err != nil {
			if known[tbl.name] {
				seen[tbl.name] = true
			}
			failed, lastErr = append(failed, tbl.name), err
			continue
		}
		seen[tbl.name] = true
		a.Observe(tbl.name, intents, committed, time.Now())
		s.backlogGauge.WithLabelValues(tbl.name).Set(float64(intents))
	}
	for name := range known {
		if !seen[name] {
			a.Forget(name)
			s.backlogGauge.DeleteLabelValues(name)
		}
	}
	if len(failed) == 0 {
		s.health.Clear(backlogComponent)
	} else {
		s.health.Set(backlogComponent, health.Degraded,
			fmt.Sprintf("the backlog of %s cannot be measured (%v): overload control keeps the last measure", strings.Join(failed, ", "), lastErr),
			"check the intent log (Kafka: the brokers and the group coordinator of resolver.group); nothing else if it passes")
	}
	s.reportOverload(a.Over())
	return seen
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
