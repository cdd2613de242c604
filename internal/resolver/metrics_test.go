package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wail-cdc/wail/internal/intent"
)

// metric returns the series of name whose labels include want, from reg.
func metric(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// TestResolutionMetrics: the resolution latency's parts, the reads and
// intents per event and the lag in seconds show what happened: an intent
// created 2 s before the resolver started waited that long for its first
// read; two intents of a key coalesced into one event; an intent whose
// write never landed holds the lag at its age until the window gives up on it.
func TestResolutionMetrics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "m")
	now := time.Now()
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("old"), Op: intent.Upsert, Version: 10, CreatedAt: now.Add(-2 * time.Second)}, "v")
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("twice"), Op: intent.Upsert, Version: 11, CreatedAt: now}, "v1")
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("twice"), Op: intent.Upsert, Version: 12, CreatedAt: now}, "v2")
	// Its store write never lands: it stays unresolved for the window.
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("ghost"), Op: intent.Upsert, Version: 13, CreatedAt: now.Add(-3 * time.Second)}, "")

	logger, _ := testLogger()
	reg := prometheus.NewRegistry()
	run := start(ctx, New(env.log, env.st, env.bus, testConfig(logger, NewMetrics(reg))), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "the events of old and twice", func() bool {
		got := onBus(ctx, t, env)
		return got["old"] == 1 && got["twice"] == 1
	})
	table := map[string]string{"table": "m"}
	hist := func(name string, labels map[string]string) *dto.Histogram {
		t.Helper()
		m := metric(t, reg, name, labels)
		if m == nil {
			t.Fatalf("no %s%v", name, labels)
		}
		return m.GetHistogram()
	}
	if h := hist("wail_resolver_intents_per_event", table); h.GetSampleCount() != 2 || h.GetSampleSum() != 3 {
		t.Errorf("intents per event: %d events, %v intents; want 2, 3", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := hist("wail_resolver_reads_per_event", table); h.GetSampleCount() != 2 || h.GetSampleSum() < 2 {
		t.Errorf("reads per event: %d events, %v reads; want 2, >= 2", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := hist("wail_resolver_first_read_wait_seconds", table); h.GetSampleCount() != 2 || h.GetSampleSum() < 2 {
		t.Errorf("first read wait: %d events, %v s; want 2, >= 2 s (the old intent's age)", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, name := range []string{"wail_resolver_resolve_seconds", "wail_resolver_publish_seconds", "wail_resolver_intent_to_event_seconds"} {
		if h := hist(name, table); h.GetSampleCount() != 2 {
			t.Errorf("%s: %d events, want 2", name, h.GetSampleCount())
		}
	}
	if h := hist("wail_resolver_read_seconds", map[string]string{"table": "m", "level": "0"}); h.GetSampleCount() < 3 {
		t.Errorf("read latency: %d reads, want >= 3", h.GetSampleCount())
	}
	lag := func() float64 {
		m := metric(t, reg, "wail_resolver_lag_seconds", map[string]string{"table": "m", "partition": "0"})
		return m.GetGauge().GetValue()
	}
	waitUntil(ctx, t, "the lag in seconds at the ghost's age", func() bool { return lag() >= 3 })
	if l := lag(); l > 3+time.Since(now).Seconds()+1 {
		t.Errorf("lag %v s, over the ghost's age", l)
	}
	// Once the window (5 s) gives up on the ghost, the resolver is caught up.
	waitUntil(ctx, t, "no lag once every intent resolved", func() bool { return lag() == 0 })
}
