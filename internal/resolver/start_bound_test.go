package resolver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// blockOnce blocks the first call of a step until its context ends.
type blockOnce struct {
	mu      sync.Mutex
	blocked bool
}

// block waits for ctx the first time and reports whether it did.
func (b *blockOnce) block(ctx context.Context) error {
	b.mu.Lock()
	first := !b.blocked
	b.blocked = true
	b.mu.Unlock()
	if !first {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (b *blockOnce) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked
}

// hangingLog is a log whose Committed, Bounds, the first Next of an
// intent reader, or a write of the start (a gap letter, the lowering of a
// committed offset beyond the end, a letter for offsets lost to a repair)
// does not answer the first time (a broken cluster). For the writes it
// makes the start take them: "gap" shows the log's start past the
// committed offset, "lower" a committed offset beyond the end, "lost" a
// lost range.
type hangingLog struct {
	Log
	step string
	b    *blockOnce
}

func (l *hangingLog) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if l.step == "committed" {
		if err := l.b.block(ctx); err != nil {
			return nil, err
		}
	}
	m, err := l.Log.Committed(ctx, group, topic)
	if err != nil || !strings.HasPrefix(topic, intent.Topic("")) {
		return m, err
	}
	if _, ok := m[0]; !ok {
		switch l.step {
		case "gap":
			m[0] = 0 // below the start Bounds shows
		case "lower":
			m[0] = 100 // beyond the end
		}
	}
	return m, nil
}

func (l *hangingLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if l.step == "bounds" && strings.HasPrefix(topic, intent.Topic("")) {
		if err := l.b.block(ctx); err != nil {
			return 0, 0, err
		}
	}
	start, end, err := l.Log.Bounds(ctx, topic, p)
	if l.step == "gap" && strings.HasPrefix(topic, intent.Topic("")) {
		start = max(start, 1)
	}
	return start, end, err
}

func (l *hangingLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if (l.step == "gap" || l.step == "lost") && strings.HasPrefix(topic, dlq.Topic("")) {
		if err := l.b.block(ctx); err != nil {
			return err
		}
	}
	return l.Log.Append(ctx, topic, recs)
}

func (l *hangingLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if l.step == "lower" {
		if err := l.b.block(ctx); err != nil {
			return err
		}
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

func (l *hangingLog) Lost(ctx context.Context, topic string, p int32) ([]intentlog.Range, error) {
	lost, err := l.Log.Lost(ctx, topic, p)
	if l.step == "lost" && err == nil && !l.b.done() {
		lost = append(lost, intentlog.Range{From: 0, To: 1})
	}
	return lost, err
}

func (l *hangingLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	rd, err := l.Log.NewReader(topic, p, offset)
	if err != nil || l.step != "first read" || !strings.HasPrefix(topic, intent.Topic("")) {
		return rd, err
	}
	return &hangingReader{Reader: rd, b: l.b}, nil
}

type hangingReader struct {
	intentlog.Reader
	b *blockOnce
}

func (r *hangingReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if err := r.b.block(ctx); err != nil {
		return nil, err
	}
	return r.Reader.Next(ctx)
}

// hangingEvents is the log under a bus, whose OffsetForTime ("recover
// time") or Bounds of an event topic ("recover bounds": the bus's
// recovery asks both) does not answer the first time.
type hangingEvents struct {
	intentlog.Log
	step string
	b    *blockOnce
}

func (l *hangingEvents) OffsetForTime(ctx context.Context, topic string, p int32, t time.Time) (int64, error) {
	if l.step == "recover time" && strings.HasPrefix(topic, eventbus.Topic("")) {
		if err := l.b.block(ctx); err != nil {
			return 0, err
		}
	}
	return l.Log.OffsetForTime(ctx, topic, p, t)
}

func (l *hangingEvents) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if l.step == "recover bounds" && strings.HasPrefix(topic, eventbus.Topic("")) {
		if err := l.b.block(ctx); err != nil {
			return 0, 0, err
		}
	}
	return l.Log.Bounds(ctx, topic, p)
}

// hangingBus is a bus whose Unblock of a hang it reports does not answer
// the first time.
type hangingBus struct {
	Bus
	step string
	b    *blockOnce
}

func (b *hangingBus) Recover(ctx context.Context, table string, p int32, since time.Time, w eventbus.RecoverWaits) (eventbus.Recovered, error) {
	rec, err := b.Bus.Recover(ctx, table, p, since, w)
	if err == nil && b.step == "unblock" && !b.b.done() {
		rec.Unblock = b.b.block // a hang, whose abort does not answer
	}
	return rec, err
}

// TestPartitionStartStepsBounded: the steps of a partition's start that
// ask the log or the bus (the committed offsets, the log's bounds, the
// first read, the bus's recovery's questions (the offset for a time, the
// event partition's bounds; its read is bounded by how long it reads
// nothing, TestRecoverProgressNotCutOff), ending a hang, and the writes of the
// start: a retention gap's letter, lowering a committed offset beyond the
// log's end, a letter for offsets a repair lost) ran with the partition's
// context, which does not end while the partition is owned: on a broken
// cluster a call that did not answer held the start for ever, with
// nothing logged and no resolver/<table>/<p> condition raised. Each is
// now bounded: the start fails, is logged and raised, and is tried again.
func TestPartitionStartStepsBounded(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"committed", "bounds", "first read", "recover time", "recover bounds", "unblock", "gap", "lower", "lost"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			table := "bound" + strings.ReplaceAll(step, " ", "")
			env := newTestEnv(ctx, t, table)
			env.write(ctx, t, "k", 1, "v")
			logger, logs := testLogger()
			b := &blockOnce{}
			cfg := testConfig(logger, nil)
			sink := &lockedSink{}
			cfg.Health = sink
			bus := eventbus.New(&hangingEvents{Log: env.log, step: step, b: b})
			r := New(&hangingLog{Log: env.log, step: step, b: b}, env.st, &hangingBus{Bus: bus, step: step, b: b}, cfg)
			r.waits = startWaits{step: 200 * time.Millisecond, recoverStall: time.Minute}
			run := start(ctx, r, env.tb)
			waitUntil(ctx, t, "the intent resolved after the "+step+" that did not answer", func() bool {
				return committedAt(ctx, t, env.log, env.tb) == 1
			})
			run.stop(t)
			if !b.done() {
				t.Fatalf("the %s step was never taken", step)
			}
			if !strings.Contains(logs.String(), "restarting") {
				t.Fatalf("the start that did not end not logged:\n%s", logs)
			}
			calls := sink.get()
			if len(calls) < 2 || calls[0].component != "resolver/"+table+"/0" || !strings.Contains(calls[0].reason, "could not start") ||
				!calls[len(calls)-1].cleared {
				t.Fatalf("health calls %+v; want the start raised, then cleared", calls)
			}
			t.Logf("raised: %s", calls[0].reason)
		})
	}
}
