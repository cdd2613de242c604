package group

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// heldReads holds the next read of committed positions after it
// returned (holdNext), until released: a step that read the group's
// positions and acts on them later.
type heldReads struct {
	intentlog.Log
	mu            sync.Mutex
	read, release chan struct{}
}

func (l *heldReads) holdNext(read, release chan struct{}) {
	l.mu.Lock()
	l.read, l.release = read, release
	l.mu.Unlock()
}

func (l *heldReads) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	c, err := l.Log.Committed(ctx, group, topic)
	l.mu.Lock()
	read, release := l.read, l.release
	l.read, l.release = nil, nil
	l.mu.Unlock()
	if read != nil {
		close(read)
		<-release
	}
	return c, err
}

// joinAckLeave joins member id from "beginning", acknowledges its first
// batch and leaves; it returns the offset acknowledged.
func joinAckLeave(t *testing.T, G *Groups, tb Table, id string) int64 {
	t.Helper()
	ctx := context.Background()
	a, err := G.Join(ctx, tb, "g", id, false)
	if err != nil {
		t.Fatal(err)
	}
	var batch Message
	until(t, a, owned{}, func(m Message) {
		if batch.Records == nil && len(m.Records) > 0 && a.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Records != nil })
	if refused, err := G.Ack(ctx, tb, "g", id, []Ack{{0, batch.Epoch, batch.Next}}); err != nil || len(refused) > 0 {
		t.Fatalf("ack: %v %v", refused, err)
	}
	a.Leave()
	return batch.Next
}

// snapEndOverAcks: the snapshot's end (offset 2 of partition 0) read
// the group without positions and is held there (read, release) while
// join makes a member join, acknowledge past 2 and leave; then the end
// goes on: it must be refused (ErrMembers) and the acknowledged
// position stand.
func snapEndOverAcks(t *testing.T, G *Groups, held *heldReads, base intentlog.Log, tb Table, join func() int64) {
	t.Helper()
	ctx := context.Background()
	read, release := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := G.Snapshot(ctx, tb, "g", "s", func(ctx context.Context, run *SnapshotRun) error {
			held.holdNext(read, release)
			return run.Commit(ctx, map[int32]int64{0: 2})
		})
		res <- err
	}()
	<-read // the end found no positions
	acked := join()
	if acked <= 2 {
		t.Fatalf("acknowledged %d: the test needs more than 2", acked)
	}
	close(release)
	err := <-res
	c, cerr := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if !errors.Is(err, ErrMembers) || c[0] != acked {
		t.Fatalf("the snapshot's end after a member acknowledged %d and left: %v, committed %d; want %v and %d "+
			"(the end moved the acknowledged position back)", acked, err, c[0], ErrMembers, acked)
	}
}

// TestSnapshotEndOverAcks: a member joins from "beginning" while a
// snapshot's end is between its check for positions (none) and its
// commit, acknowledges and leaves: the end must be refused, not move
// the member's acknowledged position back (DESIGN.md: its
// acknowledgements stand).
func TestSnapshotEndOverAcks(t *testing.T) {
	t.Parallel()
	held := &heldReads{Log: openLog(t)}
	tb := table(t, held, 1, 5)
	G := New(held, time.Minute)
	defer G.Close()
	snapEndOverAcks(t, G, held, held.Log, tb, func() int64 { return joinAckLeave(t, G, tb, "a") })
}

// TestSharedSnapshotEndOverAcks: as TestSnapshotEndOverAcks, shared by
// two processes on a log that fences: the member joins on process B
// and leaves the entry before the end goes on.
func TestSharedSnapshotEndOverAcks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	st := &fenceState{epoch: map[string]int{}}
	held := &heldReads{Log: base}
	cat := &memCatalog{m: map[string][]byte{}}
	logger := slog.New(slog.DiscardHandler)
	A := New(&fencingLog{Log: held, st: st}, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "A", Lease: time.Second, Logger: logger})
	defer A.Close()
	B := New(&fencingLog{Log: base, st: st}, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "B", Lease: time.Second, Logger: logger})
	defer B.Close()
	snapEndOverAcks(t, A, held, base, tb, func() int64 {
		acked := joinAckLeave(t, B, tb, "b")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, err := B.sharedView(ctx, tb, "g")
			if err == nil && len(st.Members) == 0 {
				return acked
			}
			if time.Now().After(deadline) {
				t.Fatalf("b's leave never reached the entry: %v", err)
			}
		}
	})
}
