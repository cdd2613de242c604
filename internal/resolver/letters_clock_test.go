package resolver

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// stepClock is a log's clock: the real one moved by a step that a test
// sets (an NTP step of the log host's clock).
type stepClock struct{ step atomic.Int64 }

func (c *stepClock) now() time.Time { return time.Now().Add(time.Duration(c.step.Load())) }

// stepBackLog: the first append to a dead-letter topic lands after the
// log's clock stepped back by back, and its answer is lost.
type stepBackLog struct {
	*embedded.Log
	clock *stepClock
	back  time.Duration
	done  atomic.Bool
}

func (l *stepBackLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, "wail.dlq.") || l.done.Swap(true) {
		return l.Log.Append(ctx, topic, recs)
	}
	l.clock.step.Store(int64(-l.back))
	if err := l.Log.Append(ctx, topic, recs); err != nil {
		return err
	}
	return errors.New("landed, answer lost")
}

// TestLetterCheckAfterClockStepsBack: an append of dead letters that
// landed while the clock stepped back (its records stamped before the
// append began), and whose answer was lost, is found by the check before
// the letters are written again, however far the clock stepped: the
// check reads from the topic's end before the append, not from a time (it
// read from 10 s before the append's start, and the letter was written
// twice).
func TestLetterCheckAfterClockStepsBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := &stepClock{}
	env := newTestEnvWith(ctx, t, "stepdlq", embedded.Options{Now: clock.now}, intentlog.TopicOptions{})
	lg := &stepBackLog{Log: env.log, clock: clock, back: time.Minute}
	logger, _ := testLogger()
	r := New(lg, env.st, env.bus, testConfig(logger, nil))
	p := newPlainPublisher(r, env.tb.Name, 0)
	a := r.gapLetter(env.tb.Name, 0, 0, 1, byRepair, time.Now())
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a}, 0); err == nil {
		t.Fatal("first append: want error")
	}
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a}, 0); err != nil {
		t.Fatal(err)
	}
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 1 {
		t.Fatalf("%d letters, want 1 (the one that landed, not written again)", len(ls))
	}
}

// TestLetterCheckOutlivesOtherLetters: a letter that landed although its
// append failed is retried after another letter went out alone (the
// core retries each key on its own backoff): the retry still checks what
// landed, and the letter is not written twice. Before, the call of the
// other letter used up the check.
func TestLetterCheckOutlivesOtherLetters(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "otherdlq")
	lg := &scriptLog{Log: env.log, script: []string{"landfail"}}
	logger, _ := testLogger()
	r := New(lg, env.st, env.bus, testConfig(logger, nil))
	p := newPlainPublisher(r, env.tb.Name, 0)
	a := r.gapLetter(env.tb.Name, 0, 0, 1, byRepair, time.Now())
	b := r.gapLetter(env.tb.Name, 0, 5, 6, byRepair, time.Now())
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a}, 0); err == nil {
		t.Fatal("first append: want error")
	}
	for _, l := range []*wailv1.DeadLetter{b, a} {
		if _, err := p.letters(ctx, []*wailv1.DeadLetter{l}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 2 {
		t.Fatalf("%d letters, want 2 (a once, b once)", len(ls))
	}
}
