package group

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// readOnlySwapper fails the writes of a memSwapper while noWrites is set
// (the store takes reads, its writes time out).
type readOnlySwapper struct {
	memSwapper
	noWrites atomic.Bool
}

func (s *readOnlySwapper) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if new != nil && s.noWrites.Load() {
		return nil, false, errCut
	}
	return s.memSwapper.SwapTable(ctx, name, old, new)
}

// The tests below: a member leaves while this process cannot write the
// group's shared entry (the store refuses writes), then something fails
// on the group (between); once the store takes writes again, the
// process's next sync must remove the member from the entry, so that a
// reset succeeds within a few leases.
func leaveUnsynced(t *testing.T, l intentlog.Log, between func(ctx context.Context, G *Groups, tb Table)) {
	t.Helper()
	ctx := context.Background()
	tb := table(t, l, 1, 5)
	sw := &readOnlySwapper{memSwapper: memSwapper{c: &memCatalog{m: map[string][]byte{}}}}
	G := New(l, time.Minute).Share(Sharing{Store: sw, Process: "A", Lease: time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()

	a, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	until(t, a, o, nil, func() bool { return len(o) == 1 })
	sw.noWrites.Store(true)
	a.Leave()
	between(ctx, G, tb)
	sw.noWrites.Store(false)
	deadline := time.Now().Add(5 * time.Second) // five leases
	for {
		err := G.Reset(ctx, tb, "g", map[int32]int64{0: 0})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrMembers) || time.Now().After(deadline) {
			t.Fatalf("reset once the store takes writes: %v (the member's leave never reached the entry)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSharedResetBeforeLeaveSynced: a reset while the entry still lists
// the member who left is refused. Before, the refused reset had already
// dropped the group from the process's memory: nothing synced it again,
// the entry listed the member for ever, and every reset was refused (its
// error promised at most a lease).
func TestSharedResetBeforeLeaveSynced(t *testing.T) {
	t.Parallel()
	leaveUnsynced(t, openLog(t), func(ctx context.Context, G *Groups, tb Table) {
		if err := G.Reset(ctx, tb, "g", map[int32]int64{0: 0}); !errors.Is(err, ErrMembers) {
			t.Fatalf("reset while the entry lists the member: %v, want %v", err, ErrMembers)
		}
	})
}

// failedReads fails the next reads of committed positions (fail).
type failedReads struct {
	intentlog.Log
	fail atomic.Int32
}

func (l *failedReads) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if l.fail.Add(-1) >= 0 {
		return nil, errors.New("injected read failure")
	}
	return l.Log.Committed(ctx, group, topic)
}

// TestSharedJoinFailsBeforeLeaveSynced: as
// TestSharedResetBeforeLeaveSynced, with a join that fails (the bus
// could not be read) instead of the first reset. Before, the join had
// dropped the group from memory before it failed.
func TestSharedJoinFailsBeforeLeaveSynced(t *testing.T) {
	t.Parallel()
	l := &failedReads{Log: openLog(t)}
	leaveUnsynced(t, l, func(ctx context.Context, G *Groups, tb Table) {
		l.fail.Store(1)
		if _, err := G.Join(ctx, tb, "g", "b", false); err == nil {
			t.Fatal("a join whose read of the positions failed succeeded")
		}
	})
}
