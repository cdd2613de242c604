package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// frozenLostLog is an embedded log that says a repair lost the offsets lost
// (its reader still reads them: what the resolver does with the range is
// under test, not the reader), and whose commits fail while frozen (a
// crash before the commit).
type frozenLostLog struct {
	*embedded.Log
	lost   []intentlog.Range
	frozen atomic.Bool
}

func (l *frozenLostLog) Lost(context.Context, string, int32) ([]intentlog.Range, error) {
	return l.lost, nil
}

func (l *frozenLostLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if l.frozen.Load() {
		return errors.New("commits frozen (a crash)")
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

// TestLostGapLetterOnceAfterHorizon: a run writes the gap letter of
// offsets a repair lost and stops before its commit passes them; the next
// run, more than the dedupe horizon later, finds that letter and does not
// write it again, also when the intents' log timestamps are ahead of the
// clock (the log host's clock jumped ahead while they were logged and
// back since): the start's scan begins before they were logged
// (loggedBy). Before, it began at now less the horizon, which missed the
// letter: each restart wrote it again (dead letters and gap metrics
// counted twice, a settled gap listed open again).
func TestLostGapLetterOnceAfterHorizon(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := &stepClock{}
	env := newTestEnvWith(ctx, t, "lostonce", embedded.Options{Now: clock.now}, intentlog.TopicOptions{})
	clock.step.Store(int64(time.Hour)) // the clock jumped ahead ...
	for i := range 4 {
		env.write(ctx, t, fmt.Sprintf("k%d", i), uint64(i+1), "v")
	}
	clock.step.Store(0) // ... and back
	lg := &frozenLostLog{Log: env.log, lost: []intentlog.Range{{From: 1, To: 3}}}
	lg.frozen.Store(true)
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.Horizon = 200 * time.Millisecond
	run := start(ctx, New(lg, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the gap letter written", func() bool { return len(readLetters(ctx, t, env.log, env.tb.Name)) == 1 })
	run.stop(t)
	time.Sleep(2 * cfg.Horizon)

	lg.frozen.Store(false)
	cfg.Metrics = NewMetrics(nil)
	r2 := New(lg, env.st, env.bus, cfg)
	run = start(ctx, r2, env.tb)
	waitUntil(ctx, t, "every intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 4 })
	run.stop(t)
	ls := readLetters(ctx, t, env.log, env.tb.Name)
	for _, l := range ls {
		if l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP || l.GapStartOffset != 1 || l.GapEndOffset != 3 {
			t.Errorf("letter %v, want the gap [1, 3)", l)
		}
	}
	if len(ls) != 1 {
		t.Fatalf("%d gap letters of one lost range, want 1", len(ls))
	}
	if n := testutil.ToFloat64(r2.cfg.Metrics.gapIntents.WithLabelValues(env.tb.Name)); n != 0 {
		t.Errorf("the second run counted %v lost intents again", n)
	}
}
