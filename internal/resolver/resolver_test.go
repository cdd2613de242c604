package resolver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestNewDefaults: what a Config leaves zero (or negative) takes its
// default; what it sets is kept.
func TestNewDefaults(t *testing.T) {
	t.Parallel()
	r := New(nil, nil, nil, Config{DrainTimeout: -1, StallAfter: -1, Concurrency: -3})
	if r.cfg.Logger == nil || r.cfg.Metrics == nil || r.cfg.DrainTimeout != 10*time.Second || r.cfg.StallAfter != DefaultStallAfter ||
		r.cfg.Concurrency != 1 {
		t.Fatalf("defaults: %+v", r.cfg)
	}
	if r := New(nil, nil, nil, Config{}); r.cfg.DrainTimeout != 10*time.Second || r.cfg.StallAfter != DefaultStallAfter || r.cfg.Concurrency != 1 {
		t.Fatalf("defaults of a zero config: %+v", r.cfg)
	}
	logger, _ := testLogger()
	m := NewMetrics(nil)
	set := Config{Logger: logger, Metrics: m, DrainTimeout: time.Second, StallAfter: time.Hour, Concurrency: 7}
	if r := New(nil, nil, nil, set); r.cfg.Logger != logger || r.cfg.Metrics != m || r.cfg.DrainTimeout != time.Second ||
		r.cfg.StallAfter != time.Hour || r.cfg.Concurrency != 7 {
		t.Fatalf("set: %+v", r.cfg)
	}
}

// TestPrintable: keys show as text when every byte is printable ASCII,
// else as hex.
func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":            "",
		"order-42":    "order-42",
		" ~":          " ~",
		"a\x1fb":      "0x611f62",
		"a\x7f":       "0x617f",
		"\xffkey":     "0xff6b6579",
		"tab\there":   "0x7461620968657265",
		"!\"#$%&'()*": "!\"#$%&'()*",
	} {
		if got := printable([]byte(in)); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNextBackoff: a restart waits twice as long as the last, up to
// maxRestartBackoff (30s).
func TestNextBackoff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want time.Duration }{
		{time.Millisecond, 2 * time.Millisecond},
		{10 * time.Second, 20 * time.Second},
		{15 * time.Second, 30 * time.Second},
		{20 * time.Second, 30 * time.Second},
		{30 * time.Second, 30 * time.Second},
	} {
		if got := nextBackoff(c.in); got != c.want {
			t.Errorf("nextBackoff(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestRunStartsTheTablesPartitions: Run resolves each partition of a
// table, and no other.
func TestRunStartsTheTablesPartitions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "parts")
	env.write(ctx, t, "k", 1, "v")
	logger, _ := testLogger()
	r := New(env.log, env.st, env.bus, testConfig(logger, nil))
	run := start(ctx, r, env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "the intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	r.runs.mu.Lock()
	defer r.runs.mu.Unlock()
	if len(r.runs.parts) != 1 || r.runs.parts["parts/0"] != 1 {
		t.Fatalf("partitions running: %v, want parts/0 only", r.runs.parts)
	}
}

// TestRestartRecoversFromTheOldestIntent: a resolver that published an
// event but stopped before it committed leaves the next one to find the
// event on the bus, scanning from the oldest unresolved intent's log time
// minus the horizon, however long ago that was: the intent is not
// published again.
func TestRestartRecoversFromTheOldestIntent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "since")
	env.write(ctx, t, "a", 1, "v")
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Horizon = 50 * time.Millisecond
	run := start(ctx, New(&commitFreezer{Log: env.log, frozen: true}, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the event published", func() bool { return onBus(ctx, t, env)["a"] == 1 })
	run.stop(t)
	if c, err := env.log.Committed(ctx, "g", intent.Topic(env.tb.Name)); err != nil || len(c) != 0 {
		t.Fatalf("committed %v (%v) with commits frozen, want nothing", c, err)
	}
	// The restart comes more than a horizon after the event: a scan from
	// its own start minus the horizon would miss it.
	time.Sleep(4 * cfg.Horizon)
	run = start(ctx, New(env.log, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	run.stop(t)
	if n := onBus(ctx, t, env)["a"]; n != 1 {
		t.Fatalf("%d events of a after the restart, want 1", n)
	}
}

// TestRestartAtTheLogStartIsNoGap: a committed offset at the log's start
// (nothing removed before it) records no gap.
func TestRestartAtTheLogStartIsNoGap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "start")
	if err := env.log.Commit(ctx, "g", intent.Topic(env.tb.Name), map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	env.write(ctx, t, "a", 1, "v")
	logger, logs := testLogger()
	run := start(ctx, New(env.log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "the intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	run.stop(t)
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 0 {
		t.Fatalf("dead letters %v, want none", ls)
	}
	if strings.Contains(logs.String(), "retention") {
		t.Fatalf("a retention gap logged:\n%s", logs)
	}
}
