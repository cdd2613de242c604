package sink

import (
	"context"
	"log/slog"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSharedSinkDeliveredByOneProcess: a sink run by processes that share
// its group (Sharing) is delivered by one of them at a time, every
// partition of it (one deliverer per sink): a second process that runs
// it too is a member holding none, and takes over only when the first
// stops.
func TestSharedSinkDeliveredByOneProcess(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	ep := newEndpoint(t, "")
	quiet := slog.New(slog.DiscardHandler)
	open := func(proc string) *Manager {
		m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond,
			Table:   func(name string) (group.Table, bool) { return f.tbl, name == testTable },
			Sharing: &group.Sharing{Store: f.cat, Process: proc, Lease: 2 * time.Second, Logger: quiet}})
		m.Start(ctx)
		t.Cleanup(m.Close)
		return m
	}
	owned := func(m *Manager) (n int) {
		r, err := m.runner(&wailv1.Sink{Table: testTable, Name: "s"})
		if err != nil {
			return 0
		}
		for p := range int32(2) {
			if r.owns(p) {
				n++
			}
		}
		return n
	}
	a := open("A")
	if _, _, err := a.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to deliver both partitions", time.Minute, func() bool { return owned(a) == 2 })
	b := open("B")
	waitFor(t, "B to run the sink", time.Minute, func() bool { _, err := b.runner(&wailv1.Sink{Table: testTable, Name: "s"}); return err == nil })
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if na, nb := owned(a), owned(b); nb != 0 || na != 2 {
			t.Fatalf("A delivers %d partitions and B %d, want A both and B none", na, nb)
		}
	}
	a.Close()
	waitFor(t, "B to take the sink over", time.Minute, func() bool { return owned(b) == 2 })
}
