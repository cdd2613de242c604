package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestRecoverFromFutureStampedIntentAfterHorizon: intents logged while the
// log's clock was an hour ahead (and stepped back since) are read again
// by a run that starts more than the dedupe horizon after the last run
// published their events and wrote their dead letters, without committing
// past them (a crash before the commit; a parked key before them does the
// same). The run scans the bus and the dead-letter topic from before they
// were logged, found from the last intent stamped before now: nothing is
// published or dead-lettered twice. Before, a timestamp ahead of now
// stood for now, the scans began a horizon before the restart, and a
// published again at the same version, and p's letter was written again.
func TestRecoverFromFutureStampedIntentAfterHorizon(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := &stepClock{}
	env := newTestEnvWith(ctx, t, "ahead2", embedded.Options{Now: clock.now}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 2
	env.write(ctx, t, "old", 1, "x") // stamped right: the last one before the jump
	clock.step.Store(int64(time.Hour))
	env.write(ctx, t, "p", 2, "x")
	env.write(ctx, t, "a", 3, "x")
	clock.step.Store(0)
	st := newFaultyStore(env.st)
	st.setPoison("p", true)
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Horizon = 200 * time.Millisecond
	if err := env.log.Commit(ctx, "g", intent.Topic("ahead2"), map[int32]int64{0: 1}); err != nil {
		t.Fatal(err)
	}
	frozen := &commitFreezer{Log: env.log, frozen: true}
	run := start(ctx, New(frozen, st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "a's event and p's letter", func() bool {
		return onBus(ctx, t, env)["a"] == 1 && len(readLetters(ctx, t, env.log, env.tb.Name)) == 1
	})
	run.stop(t) // before a commit: the intents are read again
	time.Sleep(3 * cfg.Horizon)

	run = start(ctx, New(env.log, st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the intents settled again", func() bool { return committedAt(ctx, t, env.log, env.tb) == 3 })
	run.stop(t)
	if n := onBus(ctx, t, env)["a"]; n != 1 {
		t.Errorf("%d events of a at version 3, want 1", n)
	}
	if n := len(readLetters(ctx, t, env.log, env.tb.Name)); n != 1 {
		t.Errorf("%d dead letters of p's intent, want 1", n)
	}
}

// TestRecoverAfterLogClockSteppedBack: the log's clock stepped back an
// hour after intents were logged, while a run published their events and
// wrote their dead letters, then stepped forward again; the next run,
// which reads them again (no commit past them: a crash), scans the bus
// and the dead-letter topic from the first intent's timestamp less the
// horizon and finds those events and letters: the log stamps nothing
// earlier than a record it had written before. Before, an idle bus or
// dead-letter partition stamped them an hour before the intents: a was
// published again at the same version, and p's letter written again.
func TestRecoverAfterLogClockSteppedBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := &stepClock{}
	env := newTestEnvWith(ctx, t, "back", embedded.Options{Now: clock.now}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 2
	env.write(ctx, t, "p", 1, "x")
	env.write(ctx, t, "a", 2, "x")
	clock.step.Store(int64(-time.Hour))
	st := newFaultyStore(env.st)
	st.setPoison("p", true)
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	frozen := &commitFreezer{Log: env.log, frozen: true}
	run := start(ctx, New(frozen, st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "a's event and p's letter", func() bool {
		return onBus(ctx, t, env)["a"] == 1 && len(readLetters(ctx, t, env.log, env.tb.Name)) == 1
	})
	run.stop(t) // before a commit: the intents are read again
	clock.step.Store(0)

	run = start(ctx, New(env.log, st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the intents settled again", func() bool { return committedAt(ctx, t, env.log, env.tb) == 2 })
	run.stop(t)
	if n := onBus(ctx, t, env)["a"]; n != 1 {
		t.Errorf("%d events of a at version 2, want 1", n)
	}
	if n := len(readLetters(ctx, t, env.log, env.tb.Name)); n != 1 {
		t.Errorf("%d dead letters of p's intent, want 1", n)
	}
}
