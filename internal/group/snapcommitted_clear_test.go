package group

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// forgetfulLog is a log that lost a group's committed offsets (Kafka
// expired them, or the consumer group was deleted) once forget is set,
// and whose commits fail once fail is set.
type forgetfulLog struct {
	intentlog.Log
	forget, fail atomic.Bool
}

func (l *forgetfulLog) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if l.forget.Load() && topic != registryTopic {
		return map[int32]int64{}, nil
	}
	return l.Log.Committed(ctx, group, topic)
}

func (l *forgetfulLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if l.fail.Load() {
		return errors.New("commit: injected failure")
	}
	return l.Log.Commit(ctx, group, topic, offsets)
}

// TestCommittedSnapshotClearedBeforeTheNextEnd: a group whose positions
// the log lost takes a snapshot again; its end's commit fails. The
// group's record must not name the earlier snapshot any more (the
// positions are not its end): cleared before the commit, not only
// written after it.
func TestCommittedSnapshotClearedBeforeTheNextEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &forgetfulLog{Log: openLog(t)}
	tb := table(t, l, 1, 5)
	G := New(l, time.Minute)
	defer G.Close()
	id := takeAcked(t, G, tb, nil)
	if got := committedSnapshot(t, G, tb); got != id {
		t.Fatalf("committed snapshot %d, want %d", got, id)
	}
	l.forget.Store(true)
	l.fail.Store(true)
	taken, err := G.Snapshot(ctx, tb, "g", "s2", func(ctx context.Context, run *SnapshotRun) error {
		return run.Commit(ctx, map[int32]int64{0: 3})
	})
	if taken || err == nil {
		t.Fatalf("the second snapshot, whose commit fails: taken %v, %v", taken, err)
	}
	if got := committedSnapshot(t, G, tb); got != 0 {
		t.Fatalf("committed snapshot %d after a snapshot's end failed to commit over lost positions, want 0 (none known)", got)
	}
}

// TestSnapshotEndAckedOnlyByItsMember: the end's acknowledgement counts
// only from the member taking the snapshot, for that end: another
// member's, even with the end's id, or the member's with another id (an
// earlier stream's), is refused (ErrNotMember) and the snapshot still
// waits.
func TestSnapshotEndAckedOnlyByItsMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	G := New(l, time.Minute)
	defer G.Close()
	taken, err := G.Snapshot(ctx, tb, "g", "s", func(ctx context.Context, run *SnapshotRun) error {
		return run.AwaitEnd(ctx, func(id uint64) error {
			if err := G.AckSnapshotEnd(tb, "g", "x", id); !errors.Is(err, ErrNotMember) {
				t.Errorf("another member's acknowledgement of the end: %v, want ErrNotMember", err)
			}
			if err := G.AckSnapshotEnd(tb, "g", "s", id+1); !errors.Is(err, ErrNotMember) {
				t.Errorf("the member's acknowledgement of another end (an earlier stream's): %v, want ErrNotMember", err)
			}
			go func() {
				if err := G.AckSnapshotEnd(tb, "g", "s", id); err != nil {
					t.Error(err)
				}
			}()
			return nil
		})
	})
	if taken || err == nil { // (ended without committing)
		t.Fatalf("snapshot: taken %v, %v", taken, err)
	}
}
