package group

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// stalledCommits is a log whose commits of one group wait until released.
type stalledCommits struct {
	intentlog.Log
	group   string
	armed   atomic.Bool // once set; a join's start commit passes before
	reached chan struct{}
	release chan struct{}
}

func (l *stalledCommits) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if group == l.group && l.armed.Load() {
		select {
		case l.reached <- struct{}{}:
		default:
		}
		select {
		case <-l.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

// joinDelivered joins member id to group name and returns a batch
// delivered to it.
func joinDelivered(t *testing.T, g *Groups, tb Table, name, id string) Message {
	t.Helper()
	s, err := g.Join(context.Background(), tb, name, id, false)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s) // the grant
	m := next(t, s)
	if !s.Check(m) || len(m.Records) == 0 {
		t.Fatalf("batch %+v", m)
	}
	return m
}

// TestScrapeOfABusyGroupHoldsNoOther: a metrics scrape that meets a group
// whose acknowledgement's commit waits on the log waits for that group
// only. Before, it held the lock of every group of the process while it
// waited (up to half the lease), and every other group's
// acknowledgements, joins and lease checks waited with it.
func TestScrapeOfABusyGroupHoldsNoOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	l := &stalledCommits{Log: base, group: LogGroup("slow"), reached: make(chan struct{}, 1), release: make(chan struct{})}
	g := New(l, time.Minute)
	defer g.Close()
	fast := joinDelivered(t, g, tb, "g", "a")
	slow := joinDelivered(t, g, tb, "slow", "s")
	l.armed.Store(true)

	slowDone := make(chan error, 1)
	go func() {
		_, err := g.Ack(ctx, tb, "slow", "s", []Ack{{slow.Partition, slow.Epoch, slow.Next}})
		slowDone <- err
	}()
	released := false
	release := func() {
		if !released {
			released = true
			close(l.release)
		}
	}
	defer func() {
		release()
		<-slowDone
	}()
	select {
	case <-l.reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow group's commit never started")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		_, _ = reg.Gather()
	}()
	defer func() {
		release() // the scrape may wait for the slow group
		<-scraped
	}()
	// Give the scrape a moment to meet the busy group (without the fix it
	// then holds g.mu).
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if !g.mu.TryLock() {
			break
		}
		g.mu.Unlock()
	}
	ackOtherGroup(t, g, tb, Ack{fast.Partition, fast.Epoch, fast.Next}, "the scrape of the busy group")
}
