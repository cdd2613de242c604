package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSharedSnapshotCommitAfterClose: Close gives up the snapshot claim
// held here (the snapshot stops); when the store did not answer Close's
// sync, the entry still names the claim, and the process's lease is
// still trusted, but the snapshot's commit made after Close is refused
// all the same and commits nothing: the claim was given up here, and
// another sync (or another process once the lease ended) may remove it
// from the entry between the commit's read of it and its writes.
func TestSharedSnapshotCommitAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tb, l, A, _, swA := sharedPair(t, 8*time.Second)
	commitErr := make(chan error, 1)
	taken, err := A.Snapshot(ctx, tb, "g", "a", func(sctx context.Context, run *SnapshotRun) error {
		swA.cut.Store(true) // Close's sync cannot leave the entry
		A.Close()
		swA.cut.Store(false)
		if st, err := A.sharedView(ctx, tb, "g"); err != nil || st.Snapshot == nil || st.Snapshot.Proc != "A" || st.Snapshot.Epoch != run.epoch {
			t.Errorf("the entry after Close: %+v %v, want A's claim still in it", st, err)
		}
		run.gr.mu.Lock()
		valid := run.gr.validNow(time.Now())
		run.gr.mu.Unlock()
		if !valid {
			t.Error("A's lease is no longer trusted: the test needs it to be")
		}
		commitErr <- run.Commit(ctx, map[int32]int64{0: 1, 1: 1})
		return sctx.Err()
	})
	if err := <-commitErr; !errors.Is(err, ErrSnapshotLost) {
		t.Fatalf("the commit of a snapshot after Close gave up its claim: %v, want %v", err, ErrSnapshotLost)
	}
	if taken || err == nil {
		t.Fatalf("the snapshot stopped by Close: taken %v, %v", taken, err)
	}
	if c, err := l.Committed(ctx, LogGroup("g"), tb.Topic); err != nil || len(c) != 0 {
		t.Fatalf("committed %v %v after a snapshot Close stopped, want none", c, err)
	}
}
