package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// slowFailLog: the first append to the dead-letter topic lands, then its
// call fails after `after` (an append whose answer was lost: a stalled
// disk, a cut connection).
type slowFailLog struct {
	*embedded.Log
	after time.Duration
	once  sync.Once
}

func (l *slowFailLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, "wail.dlq.") {
		return l.Log.Append(ctx, topic, recs)
	}
	first := false
	l.once.Do(func() { first = true })
	if !first {
		return l.Log.Append(ctx, topic, recs)
	}
	if err := l.Log.Append(ctx, topic, recs); err != nil {
		return err
	}
	time.Sleep(l.after)
	return errors.New("append timed out (it landed)")
}

// TestLetterNotDoubledAfterSlowFailedAppend: a letters append that landed
// but failed after more than 10 s is checked from before the append (it
// was checked from the failure's time minus 10 s, which missed it: the
// letter was written twice).
func TestLetterNotDoubledAfterSlowFailedAppend(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "slowdlq")
	env.write(ctx, t, "a", 1, "small")
	env.write(ctx, t, "big", 2, strings.Repeat("x", 1<<20))
	lg := &slowFailLog{Log: env.log, after: 11 * time.Second}
	logger, _ := testLogger()
	run := start(ctx, New(lg, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == 2 })
	run.stop(t)
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 1 {
		t.Fatalf("%d dead letters of one key's intent, want 1 (topic %s)", len(ls), dlq.Topic(env.tb.Name))
	}
}
