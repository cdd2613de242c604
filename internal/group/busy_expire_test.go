package group

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// delayedCommits is a log whose commits take a while (an fsync'd file
// replace on the embedded log, a round trip to Kafka).
type delayedCommits struct {
	intentlog.Log
	delay time.Duration
}

func (l *delayedCommits) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	time.Sleep(l.delay)
	return l.Log.Commit(ctx, group, topic, offsets)
}

// TestLeaseExpiresInABusyGroup: a member that stopped acknowledging (its
// process stuck, its stream open) loses its partitions after the lease,
// also while the group's other members acknowledge all the time. Ack
// holds the group's lock across its durable commit, and the lease check
// skips a group whose lock is busy (TryLock): with members acknowledging
// back to back, the lock is seldom free at a tick, so Ack expires members
// too.
func TestLeaseExpiresInABusyGroup(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := openLog(t)
	tb := table(t, base, 5, 1)
	l := &delayedCommits{Log: base, delay: 20 * time.Millisecond}
	const lease = 300 * time.Millisecond
	g := New(l, lease)
	defer g.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// A writer keeps every partition busy.
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			var recs []*intentlog.Record
			for j := range 20 {
				recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "w%d-%d", i, j), Value: []byte("v")})
			}
			_ = l.Append(ctx, "ev", recs)
			time.Sleep(2 * time.Millisecond)
		}
	})
	// Members a, b, d and e acknowledge every batch at once.
	for _, id := range []string{"a", "b", "d", "e"} {
		s, err := g.Join(ctx, tb, "g", id, false)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer s.Leave()
			for {
				m, err := s.Next(ctx)
				if err != nil {
					return
				}
				if m.Granted != nil || m.Revoked != nil || !s.Check(m) {
					continue
				}
				_, _ = g.Ack(ctx, tb, "g", id, []Ack{{m.Partition, m.Epoch, m.Next}})
			}
		})
	}
	// Member c takes its events and never acknowledges them.
	c, err := g.Join(ctx, tb, "g", "c", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave()
	start := time.Now()
	deadline := start.Add(10 * lease)
	for {
		nctx, ncancel := context.WithDeadline(ctx, deadline)
		m, err := c.Next(nctx)
		ncancel()
		switch {
		case errors.Is(err, ErrLeaseExpired):
			t.Logf("c expired after %s (lease %s)", time.Since(start).Round(time.Millisecond), lease)
			return
		case err != nil:
			g.mu.Lock()
			gr := g.groups[[2]string{tb.Name, "g"}]
			g.mu.Unlock()
			gr.mu.Lock()
			var stuck []string
			for p := range tb.Partitions {
				if id, _ := gr.core.Owner(p); id == "c" {
					stuck = append(stuck, fmt.Sprintf("partition %d unacknowledged for %s", p, time.Since(gr.core.unacked[p]).Round(time.Millisecond)))
				}
			}
			gr.mu.Unlock()
			t.Fatalf("member c never acknowledged, yet after %s (%d leases of %s) it is still in the group: %v (%v)",
				time.Since(start).Round(time.Millisecond), 10, lease, stuck, err)
		}
		if m.Granted == nil && m.Revoked == nil {
			c.Check(m)
		}
	}
}
