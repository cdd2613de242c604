package resolver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// slowEventsLog is a log whose readers of event topics return one record
// a call, pace after the call began; with stalled set, they return
// nothing until release is closed (a scan that makes no progress).
type slowEventsLog struct {
	intentlog.Log
	pace    time.Duration
	stalled bool
	release chan struct{}
}

func (l *slowEventsLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	rd, err := l.Log.NewReader(topic, p, offset)
	if err != nil || !strings.HasPrefix(topic, eventbus.Topic("")) {
		return rd, err
	}
	return &slowReader{Reader: rd, l: l, pos: offset}, nil
}

// slowReader returns the records of its reader one at a time.
type slowReader struct {
	intentlog.Reader
	l   *slowEventsLog
	buf []intentlog.Record
	pos int64
}

func (r *slowReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if r.l.stalled && r.pos > 0 { // past the first record, nothing more comes
		select {
		case <-r.l.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-time.After(r.l.pace):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(r.buf) == 0 {
		recs, err := r.Reader.Next(ctx)
		if err != nil {
			return nil, err
		}
		r.buf = recs
	}
	out := r.buf[:1]
	r.buf = r.buf[1:]
	r.pos = out[0].Offset + 1
	return out, nil
}

func (r *slowReader) Position() int64 {
	if len(r.buf) > 0 {
		return r.buf[0].Offset
	}
	return r.Reader.Position()
}

// TestRecoverProgressNotCutOff: a partition's start scans the bus's
// events published since its oldest unresolved intent. That scan ran under
// one total bound (10 minutes): on a big partition a scan that kept
// reading but needed longer was cut off, started again from the same
// point, and the partition never started. The scan is now bounded by how
// long it reads nothing: a slow scan that goes on (here 8 events, one
// every 60 ms, with a bound of 250 ms) completes; one that stops
// advancing still fails (ErrStalled), is logged and raised, and the
// start is tried again.
func TestRecoverProgressNotCutOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stalled bool
	}{
		{name: "progress"},
		{name: "stalled", stalled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			table := "slowrecover" + tc.name
			env := newTestEnv(ctx, t, table)
			for v := range uint64(8) {
				if err := env.bus.Publish(ctx, table, []intent.Event{{Table: table, Key: []byte{'a' + byte(v)}, Op: intent.Upsert, Version: v + 1}}); err != nil {
					t.Fatal(err)
				}
			}
			env.write(ctx, t, "k", 100, "v")
			logger, logs := testLogger()
			cfg := testConfig(logger, nil)
			sink := &lockedSink{}
			cfg.Health = sink
			slow := &slowEventsLog{Log: env.log, pace: 60 * time.Millisecond, stalled: tc.stalled, release: make(chan struct{})}
			r := New(env.log, env.st, eventbus.New(slow), cfg)
			r.waits = startWaits{step: 5 * time.Second, recoverStall: 250 * time.Millisecond}
			run := start(ctx, r, env.tb)
			if tc.stalled {
				waitUntil(ctx, t, "the stalled recovery raised", func() bool {
					calls := sink.get()
					return len(calls) > 0 && strings.Contains(calls[0].reason, "does not advance")
				})
				if committedAt(ctx, t, env.log, env.tb) != 0 {
					t.Fatal("the partition started though its recovery did not end")
				}
				close(slow.release)
			}
			waitUntil(ctx, t, "the intent resolved after the slow recovery", func() bool {
				return committedAt(ctx, t, env.log, env.tb) == 1
			})
			run.stop(t)
			calls := sink.get()
			if !tc.stalled && len(calls) > 0 {
				t.Fatalf("a recovery that advanced was raised: %+v\n%s", calls, logs)
			}
			if tc.stalled && (!strings.Contains(logs.String(), "restarting") || !calls[len(calls)-1].cleared) {
				t.Fatalf("health calls %+v; want the stall raised, then cleared\n%s", calls, logs)
			}
		})
	}
}
