package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// stalledGroup is a log whose reads of one group's committed offsets wait
// until released (a broker that does not answer, for that group's
// coordinator).
type stalledGroup struct {
	intentlog.Log
	group   string
	reached chan struct{}
	release chan struct{}
}

func (l *stalledGroup) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if group == l.group {
		select {
		case l.reached <- struct{}{}:
		default:
		}
		select {
		case <-l.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return l.Log.Committed(ctx, group, topic)
}

// TestStalledJoinHoldsNoOtherGroup: a join whose loading of the group
// waits on the log (its committed offsets do not come), or a reset that
// does, holds up that group only. Before, Join and Reset held the lock of
// every group of the process across their I/O: meanwhile every other
// group's acknowledgements waited, no lease was checked (a member that
// stopped acknowledging kept its partitions), and describe, the shared
// groups' syncs and the metrics scrape hung, for as long as the caller's
// context lasted.
func TestStalledJoinHoldsNoOtherGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stall func(ctx context.Context, g *Groups, tb Table) error
	}{
		{"join", func(ctx context.Context, g *Groups, tb Table) error {
			_, err := g.Join(ctx, tb, "stuck", "x", false)
			return err
		}},
		{"reset", func(ctx context.Context, g *Groups, tb Table) error {
			return g.Reset(ctx, tb, "stuck", map[int32]int64{0: 0, 1: 0})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stalledCall(t, tc.stall)
		})
	}
}

func stalledCall(t *testing.T, stall func(ctx context.Context, g *Groups, tb Table) error) {
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 2, 5)
	l := &stalledGroup{Log: base, group: LogGroup("stuck"), reached: make(chan struct{}, 1), release: make(chan struct{})}
	const lease = 300 * time.Millisecond
	g := New(l, lease)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	next(t, a) // the grant of both partitions
	batch := next(t, a)
	if !a.Check(batch) || len(batch.Records) == 0 {
		t.Fatalf("batch %+v", batch)
	}

	jctx, jcancel := context.WithCancel(ctx)
	joined := make(chan error, 1)
	go func() { joined <- stall(jctx, g, tb) }()
	defer func() {
		jcancel()
		close(l.release)
		<-joined
	}()
	select {
	case <-l.reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the call on the stalled group never read its offsets")
	}

	ackOtherGroup(t, g, tb, Ack{batch.Partition, batch.Epoch, batch.Records[0].Offset + 1}, "the stalled call")
	// a acknowledges no more: its lease expires meanwhile.
	select {
	case <-a.Done():
		if !errors.Is(a.Err(), ErrLeaseExpired) {
			t.Fatalf("a ended with %v", a.Err())
		}
	case <-time.After(10 * lease):
		t.Fatal("no lease expired while the other group's call was stalled")
	}
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if _, _, err := g.Describe(dctx, tb, "g"); err != nil {
		t.Fatalf("describe of another group: %v", err)
	}
}

// ackOtherGroup acknowledges a for member "a" of group "g" and fails the
// test if that waits 2 s or more (on what: for the message).
func ackOtherGroup(t *testing.T, g *Groups, tb Table, a Ack, what string) {
	t.Helper()
	acked := make(chan error, 1)
	go func() {
		_, err := g.Ack(t.Context(), tb, "g", "a", []Ack{a})
		acked <- err
	}()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("ack of another group: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("an ack of another group waited for %s", what)
	}
}
