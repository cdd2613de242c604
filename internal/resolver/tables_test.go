package resolver

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// fakeCatalog is what Config.Tables asks.
type fakeCatalog struct {
	mu     sync.Mutex
	tables map[string]catalog.Table
}

func (c *fakeCatalog) set(t catalog.Table, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.tables[t.Name] = t
	} else {
		delete(c.tables, t.Name)
	}
}

func (c *fakeCatalog) get(name string) (catalog.Table, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tables[name]
	return t, ok
}

// TestFollowsCatalog: a shortened window applies to the intents read once
// the writes admitted under the old one ended; a dropped table's partitions stop (Stopped returns) while the
// resolver runs on, and a table created again is resolved again.
func TestFollowsCatalog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "follow")
	tb := env.tb
	tb.VisibilityWindow, tb.CreatedAt = 2*time.Second, time.UnixMicro(1)
	cat := &fakeCatalog{tables: map[string]catalog.Table{tb.Name: tb}}
	var logs logbuf.Buffer
	r := New(env.log, env.st, env.bus, followConfig(&logs, cat))
	more := make(chan catalog.Table, 1)
	defer runTables(ctx, t, r, tb, more)()

	env.write(ctx, t, "a", 1, "one")
	waitUntil(ctx, t, "the event of a", func() bool { return committed(ctx, t, env, "g") == 1 })

	// An intent whose write never lands waits out the window: 2s, but the
	// table was altered to 50ms, and the writes admitted under 2s ended
	// (their processes all saw the alter within catalog.SeenWithin of the
	// refresh, then their old window passed).
	altered := tb
	altered.VisibilityWindow = 50 * time.Millisecond
	cat.set(altered, true)
	time.Sleep(catalog.SeenWithin(0) + tb.VisibilityWindow + 100*time.Millisecond)
	logIntent(ctx, t, env, "lost", 2)
	logged := time.Now()
	waitUntil(ctx, t, "the intent unmaterialized after the altered window", func() bool {
		return strings.Contains(logs.String(), "intent unmaterialized")
	})
	if took := time.Since(logged); took >= tb.VisibilityWindow {
		t.Fatalf("unmaterialized after %s: the old window applied", took)
	}

	cat.set(tb, false)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := r.Stopped(sctx, tb); err != nil {
		t.Fatalf("the dropped table's partitions did not stop: %v", err)
	}
	if !strings.Contains(logs.String(), "its table was dropped") {
		t.Error("the stop was not logged")
	}

	again := tb
	again.CreatedAt = time.UnixMicro(2)
	cat.set(again, true)
	more <- again
	env.write(ctx, t, "b", 3, "three")
	waitUntil(ctx, t, "the event of b after the table came back", func() bool { return committed(ctx, t, env, "g") == 3 })
}

func committed(ctx context.Context, t *testing.T, env *testEnv, group string) int64 {
	t.Helper()
	c, err := env.log.Committed(ctx, group, intent.Topic(env.tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// logIntent logs an intent whose store write never happens.
func logIntent(ctx context.Context, t *testing.T, env *testEnv, key string, version uint64) {
	t.Helper()
	in := intent.Intent{Table: env.tb.Name, Key: []byte(key), Op: intent.Upsert, Version: version, CreatedAt: time.Now()}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := env.log.Append(ctx, intent.Topic(env.tb.Name), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		t.Fatal(err)
	}
}

// TestFollow: a loop takes up the catalog's altered visibility window and
// retry bounds, each on its own (the others stay), and stops when its
// table is gone or was created again (another CreatedAt).
func TestFollow(t *testing.T) {
	t.Parallel()
	tb := catalog.Table{Name: "t", VisibilityWindow: time.Minute, MaxAttempts: 5, MaxRetryTime: time.Hour, CreatedAt: time.UnixMicro(1)}
	alter := func(f func(*catalog.Table)) catalog.Table {
		a := tb
		f(&a)
		return a
	}
	cases := []struct {
		name string
		now  catalog.Table
		gone bool // not in the catalog
		// want
		stop     bool
		window   time.Duration
		attempts int
		retry    time.Duration
	}{
		{name: "unchanged", now: tb, window: time.Minute, attempts: 5, retry: time.Hour},
		{name: "window altered", now: alter(func(a *catalog.Table) { a.VisibilityWindow = time.Second }), window: time.Second, attempts: 5, retry: time.Hour},
		{name: "max attempts altered", now: alter(func(a *catalog.Table) { a.MaxAttempts = 9 }), window: time.Minute, attempts: 9, retry: time.Hour},
		{name: "max retry time altered", now: alter(func(a *catalog.Table) { a.MaxRetryTime = time.Second }), window: time.Minute, attempts: 5, retry: time.Second},
		{name: "dropped", gone: true, stop: true, window: time.Minute, attempts: 5, retry: time.Hour},
		{name: "created again", now: alter(func(a *catalog.Table) { a.CreatedAt = time.UnixMicro(2); a.MaxAttempts = 9 }), stop: true,
			window: time.Minute, attempts: 5, retry: time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cat := &fakeCatalog{tables: map[string]catalog.Table{}}
			cat.set(c.now, !c.gone)
			l := testLoop(t, Config{Tables: cat.get}, nil)
			l.def = tb
			// The core runs with the table's definition (as when the loop started).
			l.core.p.Window, l.core.p.MaxAttempts, l.core.p.MaxRetryTime = tb.VisibilityWindow, int(tb.MaxAttempts), tb.MaxRetryTime
			if stop := l.follow(); stop != c.stop {
				t.Fatalf("follow stops %v, want %v", stop, c.stop)
			}
			p := l.core.p
			if p.Window != c.window || p.MaxAttempts != c.attempts || p.MaxRetryTime != c.retry {
				t.Fatalf("window %s, max attempts %d, max retry time %s; want %s, %d, %s", p.Window, p.MaxAttempts, p.MaxRetryTime, c.window, c.attempts, c.retry)
			}
			if !c.stop && l.def != c.now {
				t.Fatalf("the loop's definition %+v, want %+v", l.def, c.now)
			}
		})
	}
}

// TestRunning: Running names each partition while at least one run of it
// is on (a partition can run twice at once: a restart while the old run
// drains); Stopped waits for a table only while one of its partitions,
// or of a table of its name created before it, runs, and not for a table
// of the same name created again since (a release of the dropped one
// waited for the new one's partitions, for ever:
// TestReleaseLeavesTopicsOfTableCreatedAgainHere in CI). A drop here of
// a table created again elsewhere waits for the old one's partitions,
// which read the topics of the name it deletes.
func TestRunning(t *testing.T) {
	t.Parallel()
	r := New(nil, nil, nil, Config{})
	a := catalog.Table{Name: "a", CreatedAt: time.UnixMicro(1)}
	b := catalog.Table{Name: "b", CreatedAt: time.UnixMicro(1)}
	a2 := catalog.Table{Name: "a", CreatedAt: time.UnixMicro(2)} // a, dropped and created again
	var exits []func()
	enter := func(table catalog.Table, p int32) func() {
		return func() { exits = append(exits, r.runs.enter(table, p)) }
	}
	exit := func(i int) func() { return func() { exits[i]() } }
	type stopped struct {
		t    catalog.Table
		want bool // Stopped returns nil (with a context that ended)
	}
	steps := []struct {
		name    string
		do      func()
		running string
		stopped []stopped
	}{
		{name: "none", do: func() {}, running: "", stopped: []stopped{{a, true}}},
		{name: "a/0", do: enter(a, 0), running: "a/0", stopped: []stopped{{a, false}, {b, true}, {a2, false}}},
		{name: "a/0 again", do: enter(a, 0), running: "a/0", stopped: []stopped{{a, false}}},
		{name: "a/1", do: enter(a, 1), running: "a/0 a/1", stopped: []stopped{{a, false}}},
		{name: "b/0", do: enter(b, 0), running: "a/0 a/1 b/0", stopped: []stopped{{a, false}, {b, false}}},
		{name: "a/0 ends once", do: exit(0), running: "a/0 a/1 b/0", stopped: []stopped{{a, false}}},
		{name: "a/0 ends again", do: exit(1), running: "a/1 b/0", stopped: []stopped{{a, false}}},
		{name: "a created again: its a/1 runs", do: enter(a2, 1), running: "a/1 b/0",
			stopped: []stopped{{a, false}, {a2, false}}},
		{name: "the dropped a/1 ends", do: exit(2), running: "a/1 b/0",
			stopped: []stopped{{a, true}, {a2, false}, {b, false}}},
		{name: "b/0 ends", do: exit(3), running: "a/1", stopped: []stopped{{a, true}, {b, true}, {a2, false}}},
		{name: "the new a/1 ends", do: exit(4), running: "", stopped: []stopped{{a, true}, {a2, true}}},
		{name: "a/0 runs again", do: enter(a, 0), running: "a/0", stopped: []stopped{{a, false}, {b, true}, {a2, false}}},
		{name: "and ends", do: exit(5), running: "", stopped: []stopped{{a, true}, {a2, true}}},
		{name: "a created again runs a/0", do: enter(a2, 0), running: "a/0", stopped: []stopped{{a, true}, {a2, false}}},
		{name: "and ends too", do: exit(6), running: "", stopped: []stopped{{a, true}, {a2, true}}},
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range steps {
		s.do()
		if got := strings.Join(r.Running(), " "); got != s.running {
			t.Fatalf("%s: running %q, want %q", s.name, got, s.running)
		}
		for _, st := range s.stopped {
			if err := r.Stopped(ended, st.t); (err == nil) != st.want {
				t.Fatalf("%s: Stopped(%s created %d) = %v, want stopped %v", s.name, st.t.Name,
					st.t.CreatedAt.UnixMicro(), err, st.want)
			}
		}
	}
}

// TestStaleCatalogHoldsExpiry: while the process's catalog copy is stale
// (Config.CatalogFresh fails: another process may have lengthened the
// window without this one knowing), an intent whose write has not landed
// is not given up however long past its window; once the copy is fresh
// again, it is.
func TestStaleCatalogHoldsExpiry(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "stale")
	tb := env.tb
	tb.VisibilityWindow, tb.CreatedAt = 50*time.Millisecond, time.UnixMicro(1)
	cat := &fakeCatalog{tables: map[string]catalog.Table{tb.Name: tb}}
	var stale atomic.Bool
	stale.Store(true)
	var logs logbuf.Buffer
	cfg := followConfig(&logs, cat)
	cfg.CatalogFresh = func() error {
		if stale.Load() {
			return catalog.ErrStale
		}
		return nil
	}
	defer runTables(ctx, t, New(env.log, env.st, env.bus, cfg), tb, nil)()
	env.write(ctx, t, "a", 1, "one")
	waitUntil(ctx, t, "the event of a", func() bool { return committed(ctx, t, env, "g") == 1 })
	logIntent(ctx, t, env, "lost", 2)
	time.Sleep(20 * tb.VisibilityWindow)
	if strings.Contains(logs.String(), "intent unmaterialized") {
		t.Fatal("an intent was given up while the catalog copy was stale")
	}
	stale.Store(false)
	waitUntil(ctx, t, "the intent unmaterialized once the catalog is fresh", func() bool {
		return strings.Contains(logs.String(), "intent unmaterialized")
	})
}

// followConfig is the configuration of a resolver that follows cat,
// logging to logs.
func followConfig(logs *logbuf.Buffer, cat *fakeCatalog) Config {
	return Config{
		Group: "g", Concurrency: 2, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 1000,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Tables: cat.get,
	}
}

// runTables runs r on tb (and the tables sent on more) until the function
// it returns is called, which checks that Run ended without an error.
func runTables(ctx context.Context, t *testing.T, r *Resolver, tb catalog.Table, more chan catalog.Table) (stop func()) {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{tb}, more) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestStaleCatalogHoldsExpiryFromTheStart: a partition that starts while
// the catalog copy is stale holds expiry from its first read, not from its
// first commit tick (a window shorter than resolver.commit_interval ends
// before that tick).
func TestStaleCatalogHoldsExpiryFromTheStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "stalestart")
	tb := env.tb
	tb.VisibilityWindow, tb.CreatedAt = 20*time.Millisecond, time.UnixMicro(1)
	cat := &fakeCatalog{tables: map[string]catalog.Table{tb.Name: tb}}
	var logs logbuf.Buffer
	cfg := followConfig(&logs, cat)
	cfg.CommitInterval = time.Hour
	cfg.CatalogFresh = func() error { return catalog.ErrStale }
	logIntent(ctx, t, env, "lost", 2)
	stop := runTables(ctx, t, New(env.log, env.st, env.bus, cfg), tb, nil)
	time.Sleep(50 * tb.VisibilityWindow)
	stop()
	if strings.Contains(logs.String(), "intent unmaterialized") {
		t.Fatal("a partition that started with a stale catalog copy gave an intent up before its first commit tick")
	}
}
