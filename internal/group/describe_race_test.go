package group

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// describeKey marks the context of the Describe call whose read of the
// shared entry describeSwapper holds.
type describeKey struct{}

// describeSwapper answers the read of a Describe (its context marked) with
// entry, and tells read before it returns after pause; other calls go to
// the catalog.
type describeSwapper struct {
	*memSwapper
	entry []byte
	read  chan struct{}
	pause time.Duration
}

func (s *describeSwapper) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if ctx.Value(describeKey{}) == nil {
		return s.memSwapper.SwapTable(ctx, name, old, new)
	}
	s.read <- struct{}{}
	// A sleep, not a channel: Describe must take no synchronization from
	// the Join that runs meanwhile (the race detector would see the
	// write ordered before the read).
	time.Sleep(s.pause)
	return s.entry, true, nil
}

// TestDescribeWhileReloaded: Describe of a shared group reads the group's
// core while a Join reloads the group in place (the one case: a member
// here waits for the group's snapshot claim, groups.go load). Describe
// read gr.core (and gr.loaded) without the group's lock: a data race the
// race detector reports (run with -race; without it the test cannot see
// the race and passes).
func TestDescribeWhileReloaded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	if err := l.Commit(ctx, LogGroup("g"), tb.Topic, map[int32]int64{0: 2}); err != nil {
		t.Fatal(err)
	}
	// The entry Describe reads gives partition 0 to this process, so
	// that Describe looks at its core.
	entry := (&SharedState{Table: tb.Name, Group: "g", Partitions: 1, Seq: 7, Procs: map[string]uint64{"A": 1}, Beat: 1,
		Members: []SharedMember{{"A", "x"}}, Owners: []SharedOwner{{SharedMember{"A", "x"}, 7}}}).encode()
	sw := &describeSwapper{memSwapper: &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, entry: entry, read: make(chan struct{}), pause: 300 * time.Millisecond}
	G := New(l, time.Minute).Share(Sharing{Store: sw, Process: "A", Lease: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()
	// A member here waits for the snapshot claim: the group stays in
	// memory without members, and the next Join reloads it in place.
	if _, err := G.wantSnapshot(ctx, tb, "g", "w", new(atomic.Int64)); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := G.Describe(context.WithValue(ctx, describeKey{}, true), tb, "g")
		done <- err
	}()
	<-sw.read // Describe holds its group and reads the entry
	s, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Leave()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
