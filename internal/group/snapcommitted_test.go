package group

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// takeAcked takes the group's snapshot for member s on G: its end told,
// acknowledged by the member, and committed at offset 2 of partition 0;
// held, if not nil, is called after the commit, the snapshot still
// taken. It returns the end's id.
func takeAcked(t *testing.T, G *Groups, tb Table, held func()) uint64 {
	t.Helper()
	ctx := context.Background()
	var id uint64
	taken, err := G.Snapshot(ctx, tb, "g", "s", func(ctx context.Context, run *SnapshotRun) error {
		if err := run.AwaitEnd(ctx, func(i uint64) error {
			id = i
			go func() {
				if err := G.AckSnapshotEnd(tb, "g", "s", i); err != nil {
					t.Error(err)
				}
			}()
			return nil
		}); err != nil {
			return err
		}
		if err := run.Commit(ctx, map[int32]int64{0: 2}); err != nil {
			return err
		}
		if held != nil {
			held()
		}
		return nil
	})
	if err != nil || !taken {
		t.Fatalf("snapshot: taken %v, %v", taken, err)
	}
	return id
}

// committedSnapshot is G.CommittedSnapshot, which must not fail.
func committedSnapshot(t *testing.T, G *Groups, tb Table) uint64 {
	t.Helper()
	id, err := G.CommittedSnapshot(context.Background(), tb, "g")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCommittedSnapshot: once a snapshot's end acknowledged by its member
// is committed, the group says whose it was (the end's id), also to a
// process started again on the log (a member whose own acknowledged end
// was not committed joins there: its join tells it that the positions
// are another snapshot's); not for a table of the same name created
// again, nor after a reset (the positions are no snapshot's end).
func TestCommittedSnapshot(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	tb.Created = 42
	G := New(l, time.Minute)
	defer G.Close()
	if id := committedSnapshot(t, G, tb); id != 0 {
		t.Fatalf("before any snapshot: %d, want 0", id)
	}
	id := takeAcked(t, G, tb, nil)
	if got := committedSnapshot(t, G, tb); got != id || id == 0 {
		t.Fatalf("after the snapshot's commit: %d, want its end's id %d", got, id)
	}
	again := New(l, time.Minute) // the process started again
	defer again.Close()
	if got := committedSnapshot(t, again, tb); got != id {
		t.Fatalf("on a process started again: %d, want %d", got, id)
	}
	other := tb
	other.Created = 43
	if got := committedSnapshot(t, again, other); got != 0 {
		t.Fatalf("for the table created again: %d, want 0", got)
	}
	if err := again.Reset(context.Background(), tb, "g", map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	if got := committedSnapshot(t, again, tb); got != 0 {
		t.Fatalf("after a reset: %d, want 0", got)
	}
}

// TestSharedCommittedSnapshotWaitsForTheClaim: in a group shared by
// processes, the taker writes whose snapshot the positions are after its
// commit, before it gives the claim up; a member of another process may
// find the positions and join in between: its CommittedSnapshot waits
// while the claim is held, then answers the taker's end.
func TestSharedCommittedSnapshotWaitsForTheClaim(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	cat := &memCatalog{m: map[string][]byte{}}
	logger := slog.New(slog.DiscardHandler)
	A := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "A", Lease: time.Second, Logger: logger})
	defer A.Close()
	B := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "B", Lease: time.Second, Logger: logger})
	defer B.Close()
	type answer struct {
		id  uint64
		err error
	}
	got := make(chan answer, 1)
	id := takeAcked(t, A, tb, func() {
		go func() {
			id, err := B.CommittedSnapshot(context.Background(), tb, "g")
			got <- answer{id, err}
		}()
		select {
		case a := <-got:
			t.Errorf("CommittedSnapshot answered %d, %v while the taker still held the claim", a.id, a.err)
			got <- a
		case <-time.After(300 * time.Millisecond):
		}
	})
	select {
	case a := <-got:
		if a.err != nil || a.id != id {
			t.Fatalf("CommittedSnapshot: %d, %v; want the taker's end %d", a.id, a.err, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CommittedSnapshot still waits after the claim was given up")
	}
}

// TestCommittedSnapshotRecordNotAGroup: the record saying whose snapshot
// a group's positions are (key "table/group/snapshot") is no group of
// its own: List (the console, `wail group ls`) shows the group once, and
// a group named like the record's key cannot be made (names have no
// '/').
func TestCommittedSnapshotRecordNotAGroup(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	tb.Created = 42
	G := New(l, time.Minute)
	defer G.Close()
	takeAcked(t, G, tb, nil)
	names, err := G.List(context.Background(), tb)
	if err != nil || len(names) != 1 || names[0] != "g" {
		t.Fatalf("List: %q, %v; want [g]", names, err)
	}
	if err := ValidateName("group", "g/snapshot"); err == nil {
		t.Fatal(`group name "g/snapshot" taken: its registry record would be read as group g's committed snapshot`)
	}
}
