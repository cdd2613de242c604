package group

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// failCommits is a log whose commits fail (a process that cannot commit
// the start of the partitions it claims).
type failCommits struct{ intentlog.Log }

func (failCommits) Commit(context.Context, string, string, map[int32]int64) error {
	return errors.New("commit refused (test)")
}

// TestSharedLatestStartFixedAtJoin: in a group shared by processes, the
// first member joins a new group from "latest" (its join answered), then
// events are appended; its process cannot commit the start of what it
// claims. A member of another process that joins later and takes a
// partition starts it where the group started (the end at the first
// join), not at the end of its own join: the events appended once the
// first member was told it joined are delivered (each process started a
// partition at the end of its own join, so those events were skipped).
func TestSharedLatestStartFixedAtJoin(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := openLog(t)
	tb := table(t, base, 2, 5)
	_, share := memSharing()
	A := New(failCommits{base}, time.Minute).Share(share("A"))
	B := New(base, time.Minute).Share(share("B"))
	defer A.Close()
	defer B.Close()
	if _, err := A.Join(ctx, tb, "g", "a", true); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for p := range tb.Partitions {
		_, end, err := base.Bounds(ctx, tb.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = end
	}
	appendRecords(t, base, 40) // after the first member was told it joined
	b, err := B.Join(ctx, tb, "g", "b", true)
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := b.Next(ctx)
		if err != nil {
			t.Fatalf("b got no partition: %v", err)
		}
		for _, g := range m.Granted {
			if g.Offset != ends[g.Partition] {
				t.Fatalf("b's partition %d starts at %d; the group started at %d when a joined (the events between were skipped)",
					g.Partition, g.Offset, ends[g.Partition])
			}
		}
		if len(m.Granted) > 0 {
			return
		}
	}
}

// memSharing returns an in-memory catalog of groups' entries and the
// sharing of each process of a deployment on it (1 s process leases).
func memSharing() (*memCatalog, func(proc string) Sharing) {
	cat := &memCatalog{m: map[string][]byte{}}
	return cat, func(proc string) Sharing {
		return Sharing{Store: &memSwapper{c: cat}, Process: proc, Lease: time.Second, Logger: slog.New(slog.DiscardHandler)}
	}
}
