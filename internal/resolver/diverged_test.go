package resolver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// divergedLog plays an unclean leader election on the intent partition:
// its first reader returns two real intents and three that the log then
// lost (offsets 2-4, of key "gone"), and once the resolver committed past
// them it fails with the truncation the Kafka reader reports. The real
// log holds new intents at offsets 2-4: those the new leader took the
// lost offsets with.
type divergedLog struct {
	Log
	tb   string
	mu   sync.Mutex
	used bool
}

func (l *divergedLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	rd, err := l.Log.NewReader(topic, p, offset)
	if err != nil || topic != intent.Topic(l.tb) {
		return rd, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used || offset != 0 {
		return rd, nil
	}
	l.used = true
	return &divergedReader{Reader: rd, l: l}, nil
}

type divergedReader struct {
	intentlog.Reader
	l    *divergedLog
	pos  int64
	sent bool
}

func (r *divergedReader) Position() int64 { return r.pos }

func (r *divergedReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if !r.sent {
		var out []intentlog.Record
		for len(out) < 2 {
			recs, err := r.Reader.Next(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, recs...)
		}
		out = out[:2]
		for v := uint64(1); v <= 3; v++ {
			in := intent.Intent{Table: r.l.tb, Key: []byte("gone"), Op: intent.Upsert, Version: v, CreatedAt: time.Now()}
			b, err := in.Marshal()
			if err != nil {
				return nil, err
			}
			out = append(out, intentlog.Record{Key: in.Key, Value: b, Offset: int64(len(out)), Timestamp: time.Now()})
		}
		r.sent, r.pos = true, 5
		return out, nil
	}
	// Once the resolver committed what it read, the log diverges at 2.
	for {
		c, err := r.l.Log.Committed(ctx, "g", intent.Topic(r.l.tb))
		if err != nil {
			return nil, err
		}
		if c[0] >= 5 {
			return nil, &intentlog.Truncation{From: 2, Read: 5, Err: context.Canceled}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestReadDivergedLowersCommit: the Kafka reader reports that the intent
// log lost records it had read (an unclean leader election; offsets from 2
// on were taken by new intents). The resolver restarted the partition
// from its committed offset (5), past the new intents at 2-4:
// acknowledged writes without events, and nothing said. It now lowers the
// committed offset to where the log diverged, reads the new intents, logs
// an error naming reconcile and raises a condition naming the partition.
func TestReadDivergedLowersCommit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "diverged")
	env.write(ctx, t, "a", 1, "a1")
	env.write(ctx, t, "b", 1, "b1")
	// "gone" was stored; only its intents are lost.
	if _, err := env.st.Apply(ctx, env.tb.Name, []store.Mutation{{Key: []byte("gone"), Value: []byte("g3"), Version: 3}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"n1", "n2", "n3"} {
		env.write(ctx, t, k, 1, k) // the new intents at the lost offsets
	}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	sink := &lockedSink{}
	cfg.Health = sink
	r := New(&divergedLog{Log: env.log, tb: env.tb.Name}, env.st, env.bus, cfg)
	run := start(ctx, r, env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "events for the new intents at the diverged offsets", func() bool {
		last, err := env.bus.LastVersions(ctx, env.tb.Name, 0, time.Time{})
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		return last["n1"] == 1 && last["n2"] == 1 && last["n3"] == 1
	})
	if !strings.Contains(logs.String(), "wail table reconcile diverged") {
		t.Fatalf("the truncation not logged with reconcile:\n%s", logs)
	}
	var raised bool
	for _, c := range sink.get() {
		raised = raised || (c.component == "resolver/diverged/0/truncated" && strings.Contains(c.reason, "partition 0") && !c.cleared)
	}
	if !raised {
		t.Fatalf("no truncation condition naming the partition: %+v", sink.get())
	}
}
