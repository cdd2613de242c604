package resolver

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestLettersFitTheRecordLimit: a dead letter larger than the dead-letter
// topic's record limit (here the embedded log's MaxRecordBytes) was
// refused as too large and written again for good: the partition's
// committed offset stayed below the key's intents for ever, with nothing
// but a retried warning. The letter is made to fit: its intents split
// over records of the limit, its error detail cut, its intents' copies of
// the key left out; each record keeps the table, the key, the intents'
// versions and offsets, and the reason. An error that is not valid UTF-8
// (a store's message quoting a binary key) made a letter that could not
// be encoded, written again for good the same way.
func TestLettersFitTheRecordLimit(t *testing.T) {
	t.Parallel()
	const limit = 8 << 10
	for _, tc := range []struct {
		name    string
		key     string
		intents int
		detail  string // of the store's error
	}{
		{name: "many intents", key: "hot", intents: 400},
		{name: "long error", key: "e", intents: 1, detail: strings.Repeat(" and more", 2<<10)},
		{name: "long key", key: strings.Repeat("k", 3<<10), intents: 1},
		{name: "error not UTF-8", key: "bin", intents: 1, detail: " of key \xff\xfe"},
		{name: "long key, many intents, long error", key: strings.Repeat("q", 3<<10), intents: 5, detail: strings.Repeat("!", 20<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnvWith(ctx, t, "fit", embedded.Options{MaxRecordBytes: limit}, intentlog.TopicOptions{})
			env.tb.MaxAttempts = 1
			for i := 0; i < tc.intents; i++ {
				env.write(ctx, t, tc.key, uint64(i+1), "x")
			}
			env.write(ctx, t, "b", 1, "x")
			fs := newFaultyStore(env.st)
			fs.setPoison(tc.key, true)
			fs.detail = tc.detail
			logger, logs := testLogger()
			cfg := testConfig(logger, NewMetrics(nil))
			cfg.Limits = env.log
			run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
			want := int64(tc.intents + 1)
			deadline := time.Now().Add(10 * time.Second)
			for committedAt(ctx, t, env.log, env.tb) != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			run.stop(t)
			if c := committedAt(ctx, t, env.log, env.tb); c != want {
				t.Fatalf("committed offset %d, want %d (past the poison key's letter); letter errors %v\n%s", c, want,
					testutil.ToFloat64(cfg.Metrics.letterErrors.WithLabelValues("fit")), tail(logs.String(), 2000))
			}
			var offsets []int64
			for _, d := range readLetters(ctx, t, env.log, "fit") {
				if b := letterBytes(d); b > limit {
					t.Errorf("a letter of %d bytes, over the limit %d", b, limit)
				}
				if d.Table != "fit" || string(d.Key) != tc.key || d.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ ||
					!strings.HasPrefix(d.Error, "injected: row cannot be decoded") || d.Attempts == 0 {
					t.Errorf("letter %.300v", d)
				}
				for i, in := range d.Intents {
					if in.Version != uint64(d.IntentOffsets[i]+1) {
						t.Errorf("intent at offset %d has version %d", d.IntentOffsets[i], in.Version)
					}
				}
				offsets = append(offsets, d.IntentOffsets...)
			}
			sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
			if len(offsets) != tc.intents || offsets[0] != 0 || offsets[len(offsets)-1] != int64(tc.intents-1) {
				t.Fatalf("letters hold offsets %v, want 0 to %d", offsets, tc.intents-1)
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestLetterTooLargeUnhealthy: a dead letter that cannot be made to fit
// the dead-letter topic's record limit (a key nearly as large as the
// limit: the intent fits, the letter with the key and the reason does
// not) was written again for good behind a degraded condition that
// blamed "a full disk, the record limit, the topic deleted". Its intents
// still wait (nothing is settled without a record), but the partition is
// reported unhealthy with the topic and what to raise, the metric
// dead_letters_too_large_total counts it, and the other keys get their
// events.
func TestLetterTooLargeUnhealthy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const limit = 8 << 10
	env := newTestEnvWith(ctx, t, "toolarge", embedded.Options{MaxRecordBytes: limit}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 1
	key := strings.Repeat("k", 4000)
	env.write(ctx, t, key, 1, "x")
	env.write(ctx, t, "b", 1, "x")
	fs := newFaultyStore(env.st)
	fs.setPoison(key, true)
	fs.detail = strings.Repeat(".", 1000)
	logger, logs := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.Limits = env.log
	reg := health.NewRegistry(nil)
	cfg.Health = reg
	run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "b's event", func() bool { return onBus(ctx, t, env)["b"] == 1 })
	tooLarge := cfg.Metrics.lettersTooLarge.WithLabelValues("toolarge")
	waitUntil(ctx, t, "the letter refused as too large", func() bool { return testutil.ToFloat64(tooLarge) > 0 })
	var rep health.Report
	waitUntil(ctx, t, "the partition unhealthy", func() bool {
		rep = reg.Report()
		return rep.State == health.Unhealthy
	})
	run.stop(t)
	if c := committedAt(ctx, t, env.log, env.tb); c != 0 {
		t.Fatalf("committed offset %d: the key's intent was settled without a letter", c)
	}
	var reason string
	for _, c := range rep.Conditions {
		reason += c.Reason + " / " + c.Action
	}
	for _, want := range []string{"wail.dlq.toolarge", "record limit", "max.message.bytes"} {
		if !strings.Contains(reason, want) {
			t.Errorf("health %q lacks %q", reason, want)
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("no error log:\n%s", tail(logs.String(), 2000))
	}
	// The reason names the key cut short (it is polled on /healthz and
	// shown on the console); the log has it whole.
	if strings.Contains(reason, key) || !strings.Contains(reason, key[:64]) || !strings.Contains(reason, "4000 characters") {
		t.Errorf("health names the key of 4000 bytes whole or not at all (%d bytes): %.300q", len(reason), reason)
	}
	if !strings.Contains(logs.String(), "key="+key) {
		t.Errorf("the error log lacks the whole key")
	}
}
