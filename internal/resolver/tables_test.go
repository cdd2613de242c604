package resolver

import (
	"context"
	"log/slog"
	"strings"
	"sync"
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

// TestFollowsCatalog: an altered window applies to the intents read after
// it; a dropped table's partitions stop (Stopped returns) while the
// resolver runs on, and a table created again is resolved again.
func TestFollowsCatalog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "follow")
	tb := env.tb
	tb.VisibilityWindow, tb.CreatedAt = time.Minute, time.UnixMicro(1)
	cat := &fakeCatalog{tables: map[string]catalog.Table{tb.Name: tb}}
	var logs logbuf.Buffer
	r := New(env.log, env.st, env.bus, Config{
		Group: "g", Concurrency: 2, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 1000,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Tables: cat.get,
	})
	more := make(chan catalog.Table, 1)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{tb}, more) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	env.write(ctx, t, "a", 1, "one")
	waitUntil(ctx, t, "the event of a", func() bool { return committed(ctx, t, env, "g") == 1 })

	// An intent whose write never lands waits out the window: a minute,
	// but the table was altered to 50ms.
	altered := tb
	altered.VisibilityWindow = 50 * time.Millisecond
	cat.set(altered, true)
	time.Sleep(50 * time.Millisecond) // a few commit ticks: the loop took up the alter
	logIntent(ctx, t, env, "lost", 2)
	waitUntil(ctx, t, "the intent unmaterialized after the altered window", func() bool {
		return strings.Contains(logs.String(), "intent unmaterialized")
	})

	cat.set(tb, false)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := r.Stopped(sctx, tb.Name); err != nil {
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
