package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// goroutineID returns the id of the calling goroutine, from its stack.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// goroutinesCreatedBy counts the live goroutines that goroutine gid
// started with a sync.WaitGroup's Go.
func goroutinesCreatedBy(gid string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "created by sync.(*WaitGroup).Go in goroutine "+gid+"\n")
}

// TestReadPoolSize: Run starts Config.Concurrency read workers (the only
// goroutines it starts with a WaitGroup), however many partitions read.
func TestReadPoolSize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			env := newTestEnv(ctx, t, fmt.Sprintf("pool%d", n))
			env.write(ctx, t, "k", 1, "v")
			logger, _ := testLogger()
			cfg := testConfig(logger, nil)
			cfg.Concurrency = n
			r := New(env.log, env.st, env.bus, cfg)
			rctx, stop := context.WithCancel(ctx)
			gid, done := make(chan string, 1), make(chan error, 1)
			go func() {
				gid <- goroutineID()
				done <- r.Run(rctx, []catalog.Table{env.tb}, nil)
			}()
			id := <-gid
			// The workers start before any partition, and end with Run.
			waitUntil(ctx, t, "the intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
			got := goroutinesCreatedBy(id)
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Fatalf("%d read workers with Concurrency %d", got, n)
			}
		})
	}
}

// failingStart is a log whose first Bounds fails, as when the log is
// unreachable while a partition starts.
type failingStart struct {
	*embedded.Log
	mu     sync.Mutex
	failed bool
}

func (l *failingStart) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	l.mu.Lock()
	first := !l.failed
	l.failed = true
	l.mu.Unlock()
	if first {
		return 0, 0, errors.New("log unreachable")
	}
	return l.Log.Bounds(ctx, topic, p)
}

// TestPartitionRestartsAfterAFailedStart: a partition whose start fails
// starts again after a backoff (and says so), and resolves its intents.
func TestPartitionRestartsAfterAFailedStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "restart")
	env.write(ctx, t, "k", 1, "v")
	logger, logs := testLogger()
	log := &failingStart{Log: env.log}
	cfg := testConfig(logger, nil)
	sink := &lockedSink{}
	cfg.Health = sink
	r := New(log, env.st, env.bus, cfg)
	run := start(ctx, r, env.tb)
	// The partition runs from before its first Bounds until Run ends.
	ended := func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		r.runs.mu.Lock()
		defer r.runs.mu.Unlock()
		return log.failed && r.runs.parts["restart/0"] == 0
	}
	waitUntil(ctx, t, "the intent resolved after a restart", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 || ended() })
	if ended() {
		t.Fatal("the partition ended after its failed start")
	}
	run.stop(t)
	if !strings.Contains(logs.String(), "log unreachable") || !strings.Contains(logs.String(), "restarting") {
		t.Fatalf("the failed start not logged:\n%s", logs)
	}
	if n := onBus(ctx, t, env)["k"]; n != 1 {
		t.Fatalf("%d events of k, want 1", n)
	}
	// The failed start raised the partition's health condition, saying
	// why; it was cleared once the partition ran (a partition that cannot
	// start, as a Kafka partition without a leader, was only logged).
	calls := sink.get()
	if len(calls) < 2 || calls[0].component != "resolver/restart/0" || !strings.Contains(calls[0].reason, "could not start") ||
		!strings.Contains(calls[0].reason, "log unreachable") || !calls[len(calls)-1].cleared {
		t.Fatalf("health calls %+v; want the failed start raised, then cleared", calls)
	}
}

// lockedSink is a recordingSink for concurrent partitions.
type lockedSink struct {
	mu sync.Mutex
	recordingSink
}

func (s *lockedSink) Set(component string, st health.State, reason, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordingSink.Set(component, st, reason, action)
}

func (s *lockedSink) Clear(component string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordingSink.Clear(component)
}

func (s *lockedSink) get() []healthCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]healthCall(nil), s.calls...)
}

// appendingLog is a log that notes its appends (nothing else is called).
type appendingLog struct {
	Log
	appends [][]*intentlog.Record
}

func (l *appendingLog) Append(_ context.Context, topic string, recs []*intentlog.Record) error {
	if topic != intent.Topic("t") {
		return fmt.Errorf("append to %s", topic)
	}
	l.appends = append(l.appends, recs)
	return nil
}

// TestUnhangLogsTheOrphansOnly: unhang logs one intent per orphan, all in
// one append, before the abort; without orphans it appends nothing; a
// failed abort is returned.
func TestUnhangLogsTheOrphansOnly(t *testing.T) {
	t.Parallel()
	orphan := func(k string, v uint64) intent.Event {
		return intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: v}
	}
	for _, c := range []struct {
		name     string
		orphans  []intent.Event
		abortErr error
		appended [][]string // keys of each append
	}{
		{name: "no orphans"},
		{name: "no orphans, abort failed", abortErr: errors.New("abort failed")},
		{name: "two orphans", orphans: []intent.Event{orphan("a", 3), orphan("b", 4)}, appended: [][]string{{"a", "b"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log := &appendingLog{}
			aborted := 0
			rec := eventbus.Recovered{Orphans: c.orphans, Unblock: func(context.Context) error {
				if len(log.appends) != len(c.appended) {
					t.Errorf("aborted after %d appends, want %d", len(log.appends), len(c.appended))
				}
				aborted++
				return c.abortErr
			}}
			err := New(log, nil, nil, Config{}).unhang(t.Context(), "t", 0, rec)
			if !errors.Is(err, c.abortErr) || (err == nil) != (c.abortErr == nil) || aborted != 1 {
				t.Fatalf("unhang: %v, %d aborts; want %v, 1 abort", err, aborted, c.abortErr)
			}
			var got [][]string
			for _, recs := range log.appends {
				var keys []string
				for i, r := range recs {
					in, err := intent.UnmarshalIntent(r.Value)
					if err != nil || !bytes.Equal(in.Key, r.Key) || in.Version != c.orphans[i].Version {
						t.Errorf("intent %d logged: %+v, %v", i, in, err)
					}
					keys = append(keys, string(r.Key))
				}
				got = append(got, keys)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.appended) {
				t.Fatalf("appends %v, want %v", got, c.appended)
			}
		})
	}
}

// deadlineAppendLog notes the deadline of its appends' contexts.
type deadlineAppendLog struct {
	Log
	deadline time.Time
	had      bool
}

func (l *deadlineAppendLog) Append(ctx context.Context, _ string, _ []*intentlog.Record) error {
	l.deadline, l.had = ctx.Deadline()
	return nil
}

// TestUnhangAppendBounded: unhang's append of intents for a hang's orphans
// has a deadline. It ran with the partition's context, which never ends
// while the partition is owned: on Kafka, with fewer in-sync replicas
// than min.insync.replicas on the intent topic (the producer retries
// NOT_ENOUGH_REPLICAS until its context ends), the partition's start
// waited for ever, neither failing (and so raising resolver/<table>/<p>)
// nor logging anything.
func TestUnhangAppendBounded(t *testing.T) {
	t.Parallel()
	log := &deadlineAppendLog{}
	rec := eventbus.Recovered{Orphans: []intent.Event{{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 3}},
		Unblock: func(context.Context) error { return nil }}
	if err := New(log, nil, nil, Config{}).unhang(context.Background(), "t", 0, rec); err != nil {
		t.Fatal(err)
	}
	if !log.had || time.Until(log.deadline) > defaultStartWaits.step {
		t.Fatalf("unhang appended with deadline %v (set: %v); want one within %s", log.deadline, log.had, defaultStartWaits.step)
	}
}
