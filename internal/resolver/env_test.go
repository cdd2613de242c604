package resolver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// testEnv is a one-partition table on an embedded log, a Pebble store and
// a bus, closed when the test ends.
type testEnv struct {
	log *embedded.Log
	st  *pebble.Store
	bus *eventbus.Bus
	tb  catalog.Table

	logDir  string
	logOpts embedded.Options
}

// openLog opens the log (again, after a close) and the bus on it.
func (e *testEnv) openLog(t *testing.T) {
	t.Helper()
	log, err := embedded.Open(e.logDir, e.logOpts)
	if err != nil {
		t.Fatal(err)
	}
	e.log, e.bus = log, eventbus.New(log)
}

func newTestEnv(ctx context.Context, t *testing.T, table string) *testEnv {
	t.Helper()
	return newTestEnvWith(ctx, t, table, embedded.Options{}, intentlog.TopicOptions{})
}

// newTestEnvWith is newTestEnv with log options and intent topic options.
func newTestEnvWith(ctx context.Context, t *testing.T, table string, opts embedded.Options, intents intentlog.TopicOptions) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{logDir: filepath.Join(dir, "log"), logOpts: opts, tb: catalog.Table{Name: table, Partitions: 1, VisibilityWindow: 5 * time.Second}}
	e.openLog(t)
	t.Cleanup(func() { e.log.Close() })
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	log := e.log
	if err := log.CreateTopic(ctx, intent.Topic(table), 1, intents); err != nil {
		t.Fatal(err)
	}
	if err := e.bus.CreateTable(ctx, table, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := log.CreateTopic(ctx, dlq.Topic(table), dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	return e
}

// write logs an intent and stores the row, as the proxy does.
func (e *testEnv) write(ctx context.Context, t *testing.T, key string, version uint64, value string) {
	t.Helper()
	e.writeIntent(ctx, t, intent.Intent{Key: []byte(key), Op: intent.Upsert, Version: version, CreatedAt: time.Now()}, value)
}

// writeIntent logs in (of the env's table) and stores value at its
// version, unless value is empty.
func (e *testEnv) writeIntent(ctx context.Context, t *testing.T, in intent.Intent, value string) {
	t.Helper()
	in.Table = e.tb.Name
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.log.Append(ctx, intent.Topic(e.tb.Name), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		return
	}
	if _, err := e.st.Apply(ctx, e.tb.Name, []store.Mutation{{Key: in.Key, Value: []byte(value), Version: in.Version}}); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds, failing the test when ctx ends.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
