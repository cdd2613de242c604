package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// scriptLog: dead-letter appends follow a script: "landfail" (lands,
// then fails), "fail" (fails unwritten), then normal.
type scriptLog struct {
	*embedded.Log
	mu     sync.Mutex
	script []string
}

func (l *scriptLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, "wail.dlq.") {
		return l.Log.Append(ctx, topic, recs)
	}
	l.mu.Lock()
	step := ""
	if len(l.script) > 0 {
		step, l.script = l.script[0], l.script[1:]
	}
	l.mu.Unlock()
	switch step {
	case "landfail":
		if err := l.Log.Append(ctx, topic, recs); err != nil {
			return err
		}
		return errors.New("landed, answer lost")
	case "fail":
		return errors.New("disk full")
	}
	return l.Log.Append(ctx, topic, recs)
}

// TestLettersWindowKeptAcrossFailures: a letter that landed (answer
// lost) is found by the next call's scan, whose own append of another
// letter then fails: the check of the call after still reaches back to
// the first letter (it started at the second call: the first letter was
// written twice).
func TestLettersWindowKeptAcrossFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "hw")
	lg := &scriptLog{Log: env.log, script: []string{"landfail", "fail"}}
	logger, _ := testLogger()
	r := New(lg, env.st, env.bus, testConfig(logger, nil))
	p := newPlainPublisher(r, env.tb.Name, 0)
	a := r.gapLetter(env.tb.Name, 0, 0, 1, byRepair, time.Now())
	b := r.gapLetter(env.tb.Name, 0, 5, 6, byRepair, time.Now())
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a}, 0); err == nil {
		t.Fatal("first append: want error")
	}
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a, b}, 0); err == nil {
		t.Fatal("second call: want error")
	}
	if _, err := p.letters(ctx, []*wailv1.DeadLetter{a, b}, 0); err != nil {
		t.Fatal(err)
	}
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 2 {
		t.Fatalf("%d letters, want 2 (a written twice)", len(ls))
	}
}
