package sink

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// boundsFailLog fails Bounds while fail is set.
type boundsFailLog struct {
	intentlog.Log
	fail atomic.Bool
}

func (l *boundsFailLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if l.fail.Load() {
		return 0, 0, errors.New("injected bounds failure")
	}
	return l.Log.Bounds(ctx, topic, p)
}

// A "latest" sink whose create saved the definition but could not commit
// its start is given that start by the same create again: the retry
// answers success, so an event published after it must be delivered
// however late a process starts running the sink (before, the retry was
// "unchanged" and the sink started at the end of the log when it first
// ran, skipping what was published between the retry and then).
func TestCreateRetryCommitsStart(t *testing.T) {
	f := newFixture(t, 2)
	ep := newEndpoint(t, "")
	ctx := context.Background()
	f.publish(event("before", 1))
	fl := &boundsFailLog{Log: f.log}
	table := func(name string) (group.Table, bool) { return f.tbl, name == testTable }
	admin := New(Options{Backend: f.cat, Log: fl, Run: false, Table: table})
	defer admin.Close()
	def := &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "latest", MaxBatchEvents: 1}
	fl.fail.Store(true)
	if _, created, err := admin.Create(ctx, def); err == nil || !created {
		t.Fatalf("create with the start failing: created %v, err %v; want created and an error", created, err)
	}
	fl.fail.Store(false)
	if _, _, err := admin.Create(ctx, def); err != nil {
		t.Fatalf("create again: %v", err)
	}
	f.publish(event("after", 1))
	m := f.manager()
	defer m.Close()
	waitFor(t, "the event published after the create to be delivered", 20*time.Second, func() bool {
		for _, e := range ep.events() {
			if string(e.Key) == "after" {
				return true
			}
		}
		return false
	})
	for _, e := range ep.events() {
		if string(e.Key) == "before" {
			t.Errorf("event published before the create delivered: %v", e)
		}
	}
}
