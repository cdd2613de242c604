package resolver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// aheadLog reads the records of one topic from offset from on stamped by
// later than the log stamped them (their producer's clock ahead, as a
// Kafka producer's CreateTime; the bus and the dead-letter topic keep the
// log's), and fails commits while frozen (a crash before the commit).
type aheadLog struct {
	*embedded.Log
	topic  string
	from   int64
	by     time.Duration
	frozen atomic.Bool
}

func (l *aheadLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if l.frozen.Load() {
		return errors.New("commits frozen (a crash)")
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

func (l *aheadLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	rd, err := l.Log.NewReader(topic, p, offset)
	if err != nil || topic != l.topic {
		return rd, err
	}
	return aheadReader{rd, l}, nil
}

// OffsetForTime is the first offset of topic stamped (as read) at or after
// t: found by reading the topic, small in tests.
func (l *aheadLog) OffsetForTime(ctx context.Context, topic string, p int32, t time.Time) (int64, error) {
	if topic != l.topic {
		return l.Log.OffsetForTime(ctx, topic, p, t)
	}
	start, end, err := l.Bounds(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	rd, err := l.NewReader(topic, p, start)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if !r.Timestamp.Before(t) {
				return r.Offset, nil
			}
		}
	}
	return end, nil
}

type aheadReader struct {
	intentlog.Reader
	l *aheadLog
}

func (r aheadReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	recs, err := r.Reader.Next(ctx)
	for i := range recs {
		if recs[i].Offset >= r.l.from {
			recs[i].Timestamp = recs[i].Timestamp.Add(r.l.by)
		}
	}
	return recs, err
}

// TestRecoverFromFutureStampedIntentAfterHorizon: intents stamped an hour
// ahead (their producer's clock ahead; the events and letters stamped
// right) are read again by a run that starts more than the dedupe
// horizon after the last run published their events and wrote their dead
// letters, without committing past them (a crash before the commit; a
// parked key before them does the same). The run scans the bus and the
// dead-letter topic from before they were logged, found from the last
// intent stamped before now: nothing is published or dead-lettered twice.
// Before, a timestamp ahead of now stood for now, the scans began a
// horizon before the restart, and a was published again at the same
// version, and p's letter was written again.
func TestRecoverFromFutureStampedIntentAfterHorizon(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		from int64 // the first intent stamped ahead, and the committed offset
	}{
		{"the intent before stamped right", 1},
		{"every intent ahead", 0}, // the scans read from the start
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnv(ctx, t, "ahead2")
			env.tb.MaxAttempts = 2
			env.write(ctx, t, "old", 1, "x")
			env.write(ctx, t, "p", 2, "x")
			env.write(ctx, t, "a", 3, "x")
			lg := &aheadLog{Log: env.log, topic: intent.Topic("ahead2"), from: c.from, by: time.Hour}
			st := newFaultyStore(env.st)
			st.setPoison("p", true)
			logger, _ := testLogger()
			cfg := testConfig(logger, nil)
			cfg.Horizon = 200 * time.Millisecond
			if err := env.log.Commit(ctx, "g", intent.Topic("ahead2"), map[int32]int64{0: c.from}); err != nil {
				t.Fatal(err)
			}
			lg.frozen.Store(true)
			run := start(ctx, New(lg, st, env.bus, cfg), env.tb)
			waitUntil(ctx, t, "a's event and p's letter", func() bool {
				return onBus(ctx, t, env)["a"] == 1 && len(readLetters(ctx, t, env.log, env.tb.Name)) == 1
			})
			run.stop(t) // before a commit: the intents are read again
			time.Sleep(3 * cfg.Horizon)

			lg.frozen.Store(false)
			run = start(ctx, New(lg, st, env.bus, cfg), env.tb)
			waitUntil(ctx, t, "the intents settled again", func() bool { return committedAt(ctx, t, env.log, env.tb) == 3 })
			run.stop(t)
			bus := onBus(ctx, t, env)
			if bus["a"] != 1 || bus["old"] != 1-int(c.from) {
				t.Errorf("events of a and old: %d and %d, want 1 and %d", bus["a"], bus["old"], 1-c.from)
			}
			if n := len(readLetters(ctx, t, env.log, env.tb.Name)); n != 1 {
				t.Errorf("%d dead letters of p's intent, want 1", n)
			}
		})
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
