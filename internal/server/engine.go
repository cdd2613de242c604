package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/store/pebble"
)

// engineReporter is a store that reports its storage engine's state
// (pebble.Store.Engine).
type engineReporter interface {
	Engine() pebble.Engine
}

// engineCollector exports a Pebble store's engine state, read once per
// scrape.
type engineCollector struct {
	st    engineReporter
	descs []engineMetric
}

type engineMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(pebble.Engine) float64
}

func newEngineCollector(st engineReporter) *engineCollector {
	m := func(name, help string, kind prometheus.ValueType, value func(pebble.Engine) float64) engineMetric {
		return engineMetric{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind, value: value}
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return &engineCollector{st: st, descs: []engineMetric{
		m("wail_store_pebble_l0_sublevels", "Sublevels of the Pebble store's level 0: Pebble stops writes at 12 (L0StopWritesThreshold); growing means compactions fall behind the writes.",
			gauge, func(e pebble.Engine) float64 { return float64(e.L0Sublevels) }),
		m("wail_store_pebble_l0_files", "Sstables in the Pebble store's level 0.",
			gauge, func(e pebble.Engine) float64 { return float64(e.L0Files) }),
		m("wail_store_pebble_read_amplification", "Sublevels a read of the Pebble store consults, over all levels.",
			gauge, func(e pebble.Engine) float64 { return float64(e.ReadAmp) }),
		m("wail_store_pebble_compaction_debt_bytes", "Bytes Pebble estimates its compactions must rewrite for the LSM tree to be in shape again.",
			gauge, func(e pebble.Engine) float64 { return float64(e.CompactionDebtBytes) }),
		m("wail_store_pebble_compactions_total", "Compactions of the Pebble store finished since the process started.",
			counter, func(e pebble.Engine) float64 { return float64(e.Compactions) }),
		m("wail_store_pebble_compactions_running", "Compactions of the Pebble store running now.",
			gauge, func(e pebble.Engine) float64 { return float64(e.CompactionsRunning) }),
		m("wail_store_pebble_memtable_bytes", "Memory of the Pebble store's memtables (the one written and those waiting to be flushed).",
			gauge, func(e pebble.Engine) float64 { return float64(e.MemtableBytes) }),
		m("wail_store_pebble_disk_bytes", "Size of the Pebble store's files on disk (sstables, WAL, manifest).",
			gauge, func(e pebble.Engine) float64 { return float64(e.DiskBytes) }),
		m("wail_store_pebble_write_stalls_total", "Times Pebble held the store's writes because flushes or compactions fell behind (too many memtables or level 0 sublevels).",
			counter, func(e pebble.Engine) float64 { return float64(e.Stalls) }),
		m("wail_store_pebble_write_stall_seconds_total", "Time Pebble held the store's writes, the running stall included.",
			counter, func(e pebble.Engine) float64 { return e.StallTime.Seconds() }),
	}}
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d.desc
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.st.Engine()
	for _, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(e))
	}
}
