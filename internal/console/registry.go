package console

import (
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// charted are the metrics the live charts read (series.go).
var charted = []string{metricWrites, metricEvents, metricLatency, metricLag, metricLagSec, metricOldest}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// tee registers collectors on a registry, and those of charted metrics
// on the console's own registry too, so that a sample gathers them alone
// (a registry's Gather costs as much as a scrape of every metric).
type tee struct {
	prometheus.Registerer
	charts *prometheus.Registry
}

// Registerer returns a Registerer that registers on reg, and the
// Gatherer of the charted metrics among what it registered (the
// Console's Options.Gatherer).
func Registerer(reg prometheus.Registerer) (prometheus.Registerer, prometheus.Gatherer) {
	t := &tee{Registerer: reg, charts: prometheus.NewRegistry()}
	return t, t.charts
}

// Register implements prometheus.Registerer.
func (t *tee) Register(c prometheus.Collector) error {
	if err := t.Registerer.Register(c); err != nil {
		return err
	}
	if !isCharted(c) {
		return nil
	}
	if err := t.charts.Register(c); err != nil {
		t.Registerer.Unregister(c)
		return err
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (t *tee) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (t *tee) Unregister(c prometheus.Collector) bool {
	t.charts.Unregister(c)
	return t.Registerer.Unregister(c)
}

func isCharted(c prometheus.Collector) bool {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	found := false
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && slices.Contains(charted, m[1]) {
			found = true
		}
	}
	return found
}
