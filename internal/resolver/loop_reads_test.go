package resolver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// The loop's store reads: held by a gate, bounded in number and time.

// gateStore counts the reads of each key and holds them until the key's
// gate opens (or the read times out). It has no GetMany.
type gateStore struct {
	Store
	mu      sync.Mutex
	reads   map[string]int
	gates   map[string]chan struct{}
	allOpen bool
}

func (s *gateStore) gate(key string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gates[key] == nil {
		s.gates[key] = make(chan struct{})
		if s.allOpen {
			close(s.gates[key])
		}
	}
	return s.gates[key]
}

func (s *gateStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	s.mu.Lock()
	s.reads[string(key)]++
	s.mu.Unlock()
	select {
	case <-s.gate(string(key)):
	case <-ctx.Done():
		return store.Row{}, false, ctx.Err()
	}
	return s.Store.Get(ctx, table, key, level)
}

// open lets the reads of key through, from now on.
func (s *gateStore) open(key string) {
	g := s.gate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-g:
	default:
		close(g)
	}
}

// openAll lets every read through, from now on.
func (s *gateStore) openAll() {
	s.mu.Lock()
	s.allOpen = true
	var keys []string
	for k := range s.gates {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.open(k)
	}
}

// readsOf counts the reads of keys (asked; held or not).
func (s *gateStore) readsOf(keys ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range keys {
		n += s.reads[k]
	}
	return n
}

// gatedRun runs a resolver, configured by tweak, over a gateStore after
// logging and storing an intent of each key; the test's end opens the
// gates and stops it.
func gatedRun(ctx context.Context, t *testing.T, table string, keys []string, tweak func(*Config)) (*testEnv, *gateStore) {
	t.Helper()
	env := newTestEnv(ctx, t, table)
	st := &gateStore{Store: env.st, reads: map[string]int{}, gates: map[string]chan struct{}{}}
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	tweak(&cfg)
	for _, k := range keys {
		env.write(ctx, t, k, 1, "v")
	}
	run := start(ctx, New(env.log, st, env.bus, cfg), env.tb)
	t.Cleanup(func() { run.stop(t) })
	t.Cleanup(st.openAll) // first
	return env, st
}

// TestBackpressure: a partition with MaxUnresolved intents unresolved
// reads no more intents until one resolves.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, st := gatedRun(ctx, t, "pressure", []string{"k0", "k1", "k2"}, func(c *Config) { c.MaxUnresolved, c.Concurrency = 3, 8 })
	waitUntil(ctx, t, "the three intents are read back", func() bool {
		return st.readsOf("k0") > 0 && st.readsOf("k1") > 0 && st.readsOf("k2") > 0
	})
	env.write(ctx, t, "k3", 1, "v")
	// An absence can only be checked for a while: long enough for the loop,
	// idle but for the reads it waits for, to take the intent if it would.
	time.Sleep(300 * time.Millisecond)
	if n := st.readsOf("k3"); n != 0 {
		t.Fatalf("k3 read %d times with MaxUnresolved intents unresolved", n)
	}
	st.open("k0")
	waitUntil(ctx, t, "k3 is read once k0 resolved", func() bool { return st.readsOf("k3") > 0 })
}

// TestReadConcurrency: Config.Concurrency reads run at once, no more.
func TestReadConcurrency(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	_, st := gatedRun(ctx, t, "workers", keys, func(c *Config) { c.Concurrency = 2 })
	waitUntil(ctx, t, "two reads run", func() bool { return st.readsOf(keys...) >= 2 })
	// An absence can only be checked for a while (see TestBackpressure).
	time.Sleep(300 * time.Millisecond)
	if n := st.readsOf(keys...); n != 2 {
		t.Fatalf("%d reads at once, want Concurrency = 2", n)
	}
}

// TestReadTimeoutIsUnavailable: a read that readTimeout cut short failed
// with store.ErrUnavailable (it never counts toward a dead letter); one
// that failed on its own, or because the resolver stops, keeps its error.
func TestReadTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	live := context.Background()
	stopped, stop := context.WithCancel(live)
	stop()
	expired, cancel := context.WithTimeout(live, -time.Second)
	defer cancel()
	stoppedExpired, cancel2 := context.WithTimeout(stopped, -time.Second)
	defer cancel2()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name        string
		ctx, rctx   context.Context
		err         error
		wantUnavail bool
	}{
		{"the read's deadline passed", live, expired, context.DeadlineExceeded, true},
		{"no error", live, expired, nil, false},
		{"the deadline is not over: the store's own error", live, live, boom, false},
		{"the store's own error, after the deadline", live, expired, boom, false},
		{"the resolver stops", stopped, stoppedExpired, context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := timedOut(tc.ctx, tc.rctx, tc.err)
			if got := errors.Is(err, store.ErrUnavailable); got != tc.wantUnavail {
				t.Fatalf("timedOut(%v) = %v: unavailable %v, want %v", tc.err, err, got, tc.wantUnavail)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("timedOut(%v) = %v: lost the error", tc.err, err)
			}
			if tc.err == nil && err != nil {
				t.Fatalf("timedOut(nil) = %v", err)
			}
		})
	}
}
