package e2etest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store"
)

// lateStore commits the writes of keys starting with "late" lag after
// they were sent, and tells the proxy nothing: their answer is lost (a
// commit stalled in fsync past the client's deadline, on a database
// starved of CPU). The proxy reports the outcome unknown and logs no
// ABORT.
type lateStore struct {
	store.Store
	lag time.Duration
	wg  sync.WaitGroup
}

var errAnswerLost = errors.New("injected: the database did not answer before the deadline")

func (s *lateStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	if !strings.HasPrefix(string(muts[0].Key), "late") {
		return s.Store.Apply(ctx, table, muts)
	}
	s.wg.Go(func() {
		time.Sleep(s.lag)
		if _, err := s.Store.Apply(context.Background(), table, muts); err != nil {
			panic(fmt.Sprintf("late commit: %v", err))
		}
	})
	return nil, errAnswerLost
}

// TestLateCommit: writes whose commit becomes visible after the table's
// visibility window (half a window late) still get their event, from the
// resolver's recheck (resolver.recheck, one window later): once writes
// stop, the last event of every key is the store's state. Keys written
// normally meanwhile resolve as usual.
func TestLateCommit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The late commits land half a window after the window, half a window
	// before their recheck: a window of 300ms left 150ms, which a loaded
	// machine took once.
	const window = time.Second
	b := openEmbedded(t)
	late := &lateStore{Store: b.Store, lag: window * 3 / 2}
	flaky := newFlakyStore(late, 0)
	bus := eventbus.New(b.Log)
	cat := openCatalog(ctx, t, b, bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: window, Partitions: 2})
	tb, _, err := cat.Create(ctx, catalog.Table{Name: "late"})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(5, nil)
	px := proxy.New(b.Log, flaky, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
	res := startResolverWith(ctx, b, bus, tb, "first", func(c *resolver.Config) { c.Recheck = 1 })

	var writes []Write
	write := func(key, value string) {
		r := px.Write(ctx, []proxy.Mutation{{Table: tb.Name, Key: []byte(key), Value: []byte(value)}})[0]
		writes = append(writes, Write{Key: key, Version: r.Version, Value: value, Acked: r.Err == nil && r.IntentLogged})
	}
	for i := range 10 {
		write(fmt.Sprintf("late-%d", i), "first")
		write(fmt.Sprintf("on-time-%d", i), "first")
	}
	// Keys written on time while the late commits wait resolve as usual.
	time.Sleep(window / 2)
	for i := range 5 {
		write(fmt.Sprintf("on-time-%d", i), "second")
	}
	late.wg.Wait()
	waitResolved(t, ctx, b.Log, groupOf(tb.Name), tb)
	res.stop(t)

	events := readEvents(t, ctx, b.Log, tb)
	final := finalState(t, ctx, b.Store, tb.Name, flaky.keys())
	for i := range 10 {
		if k := fmt.Sprintf("late-%d", i); !final[k].Deleted && len(final[k].Value) == 0 {
			t.Fatalf("%s: the late write never landed: %+v", k, final[k])
		}
	}
	Check(t, writes, events, flaky.check, final, nil)
}
