package resolver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestLargeEventsFitOneAppend: many large events of one partition, each
// well within the record limit, are published in appends that the log
// takes: none fails as a whole (the embedded log's MaxBatchBytes, the
// Kafka producer's batch), none is dead-lettered. The bus holds the first
// append until every key was read, so that all the others queue at once.
func TestLargeEventsFitOneAppend(t *testing.T) {
	t.Parallel()
	const keys, valueBytes = 40, 200 << 10 // 8 MiB in all
	cases := []struct {
		name     string
		maxBatch int64 // the log's
		limits   bool  // the resolver knows the log's limit (else DefaultAppendBytes)
	}{
		{name: "the log's limit", maxBatch: 1 << 20, limits: true},
		{name: "the default limit", maxBatch: DefaultAppendBytes + 64<<10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnvWith(ctx, t, "large", embedded.Options{MaxBatchBytes: c.maxBatch}, intentlog.TopicOptions{})
			for i := 0; i < keys; i++ {
				env.write(ctx, t, fmt.Sprintf("k%02d", i), uint64(i+1), strings.Repeat(string(rune('a'+i%26)), valueBytes))
			}
			bus := &faultyBus{Bus: env.bus, gate: make(chan struct{})}
			logger, _ := testLogger()
			cfg := testConfig(logger, NewMetrics(nil))
			cfg.Concurrency = 4
			if c.limits {
				cfg.Limits = env.log
			}
			r := New(env.log, env.st, bus, cfg)
			run := start(ctx, r, env.tb)
			reads := r.cfg.Metrics.reads.WithLabelValues("large", "0")
			waitUntil(ctx, t, "every key read", func() bool { return testutil.ToFloat64(reads) >= keys })
			close(bus.gate)
			waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == keys })
			run.stop(t)

			appends, failed := bus.counts()
			if failed > 0 {
				t.Errorf("%d of %d appends failed", failed, appends)
			}
			if min := int(keys * valueBytes / c.maxBatch); appends < min {
				t.Errorf("%d appends of 8 MiB of events, at most %d bytes each: want at least %d", appends, c.maxBatch, min)
			}
			got := onBus(ctx, t, env)
			for i := 0; i < keys; i++ {
				if k := fmt.Sprintf("k%02d", i); got[k] != 1 {
					t.Errorf("key %s: %d events, want 1", k, got[k])
				}
			}
			if ls := readLetters(ctx, t, env.log, "large"); len(ls) != 0 {
				t.Errorf("dead letters: %v", ls)
			}
		})
	}
}

// TestLargeLetterFitsTheLog: a parked key with large keys and many
// intents makes a dead letter far larger than a record, and than an
// append, may be; it is written as records of a size the log takes, in
// appends it takes, and every intent is settled.
func TestLargeLetterFitsTheLog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Appends of at most 1 MiB: the letter's records take more than one.
	env := newTestEnvWith(ctx, t, "bigletter", embedded.Options{MaxBatchBytes: 1 << 20}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 3
	const intents = 600
	key := strings.Repeat("k", 4096) // 600 intents of it: 2.4 MiB
	for i := 0; i < intents; i++ {
		env.write(ctx, t, key, uint64(i+1), "v")
	}
	fs := newFaultyStore(env.st)
	fs.setPoison(key, true)
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.RetryMin, cfg.Limits = 20*time.Millisecond, env.log
	run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == intents })
	run.stop(t)
	seen := map[int64]bool{}
	ls := readLetters(ctx, t, env.log, env.tb.Name)
	for _, l := range ls {
		for _, o := range l.IntentOffsets {
			seen[o] = true
		}
	}
	if len(seen) != intents {
		t.Fatalf("%d of %d intents in %d dead-letter records", len(seen), intents, len(ls))
	}
	if want := intents * len(key) / maxLetterIntentBytes; len(ls) < want {
		t.Errorf("%d records for %d bytes of intents, want at least %d", len(ls), intents*len(key), want)
	}
}
