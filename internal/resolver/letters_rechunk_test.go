package resolver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// outageDLQ: the first append to the dead-letter topic lands; the
// dead-letter topic is then out for `outage`: its appends fail, and so do
// the reads of its limits (the loop falls back to DefaultAppendBytes).
// Before it, each record of a letter is cut to 8 KiB and goes alone.
type outageDLQ struct {
	*embedded.Log
	outage time.Duration
	mu     sync.Mutex
	landed bool
	until  time.Time
}

func (l *outageDLQ) down() (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.landed, l.landed && time.Now().Before(l.until)
}

func (l *outageDLQ) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, "wail.dlq.") {
		return l.Log.Append(ctx, topic, recs)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.landed {
		l.landed, l.until = true, time.Now().Add(l.outage)
		return l.Log.Append(ctx, topic, recs)
	}
	if time.Now().Before(l.until) {
		return errors.New("dead-letter topic out")
	}
	return l.Log.Append(ctx, topic, recs)
}

func (l *outageDLQ) AppendLimit(ctx context.Context, topic string) (int, error) {
	if landed, down := l.down(); down {
		return 0, errors.New("dead-letter topic out")
	} else if !landed {
		return 8 << 10, nil
	}
	return DefaultAppendBytes, nil
}

func (l *outageDLQ) RecordLimit(ctx context.Context, topic string) (int, string, error) {
	n, err := l.AppendLimit(ctx, topic)
	return n, "test", err
}

// TestLetterCutAgainAfterPartlyLanded: a letter cut in several records,
// the first of which landed before the dead-letter topic went out, is cut
// otherwise on its retry (the record limit read again: here the default
// while the topic is out, or an operator raised it). Its intents whose
// offsets the landed record does not hold are written all the same.
// Before, a record whose first intent's offset had landed was skipped
// whole: the intents after the landed ones were settled with no letter and
// no event.
func TestLetterCutAgainAfterPartlyLanded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "rechunk")
	env.tb.MaxAttempts = 1
	const intents = 400
	for i := 0; i < intents; i++ {
		env.write(ctx, t, "hot", uint64(i+1), "x")
	}
	fs := newFaultyStore(env.st)
	fs.setPoison("hot", true)
	lg := &outageDLQ{Log: env.log, outage: lagEvery + time.Second}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Limits = lg
	run := start(ctx, New(lg, fs, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == intents })
	run.stop(t)
	var offsets []int64
	for _, d := range readLetters(ctx, t, env.log, env.tb.Name) {
		offsets = append(offsets, d.IntentOffsets...)
	}
	slices.Sort(offsets)
	seen := map[int64]bool{}
	for _, o := range offsets {
		seen[o] = true
	}
	for o := int64(0); o < intents; o++ {
		if !seen[o] {
			t.Fatalf("the intent at offset %d was settled without a letter: the letters hold %d intents of %d (%d to %d)\n%s",
				o, len(seen), intents, offsets[0], offsets[len(offsets)-1], tail(logs.String(), 1500))
		}
	}
}
