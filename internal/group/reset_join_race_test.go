package group

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// resetKey marks the context of the Reset whose first read of the shared
// entry hookSwapper holds.
type resetKey struct{}

// hookSwapper runs hook once, after the first read of a call whose
// context is marked (resetKey), before answering it.
type hookSwapper struct {
	*memSwapper
	once sync.Once
	hook func()
}

func (s *hookSwapper) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.memSwapper.SwapTable(ctx, name, old, new)
	if ctx.Value(resetKey{}) != nil && old == nil && new == nil {
		s.once.Do(s.hook)
	}
	return cur, ok, err
}

// TestSharedResetRacesJoin: process A resets a shared group; its check
// of the entry finds no members, and then, before A fences the
// partitions, a member joins on process B, claims the partition, fences
// it and starts at the committed 5. A's fence then fenced B's committer:
// the reset went on and succeeded while the group had a member, and B's
// member, at the position from before the reset, had every
// acknowledgement refused ("another process took it") while it kept the
// partition, until its lease expired. Now A reads the entry again after
// its fence and refuses (ErrMembers), and B gives a partition whose
// committer was fenced up at once: its next sync claims it again (a new
// epoch, fenced anew, from the committed offset), so its member goes on.
func TestSharedResetRacesJoin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	if err := base.Commit(ctx, LogGroup("g"), tb.Topic, map[int32]int64{0: 5}); err != nil {
		t.Fatal(err)
	}
	st := &fenceState{epoch: map[string]int{}}
	la, lb := &fencingLog{Log: base, st: st}, &fencingLog{Log: base, st: st}
	cat := &memCatalog{m: map[string][]byte{}}
	swA := &hookSwapper{memSwapper: &memSwapper{c: cat}}
	logger := slog.New(slog.DiscardHandler)
	// The members' lease is long: only a regrant can end the refusals.
	A := New(la, time.Minute).Share(Sharing{Store: swA, Process: "A", Lease: time.Second, Logger: logger})
	defer A.Close()
	B := New(lb, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "B", Lease: time.Second, Logger: logger})
	defer B.Close()

	var b *Session
	o := owned{}
	var first Message
	swA.hook = func() { // between A's check and its fence
		var err error
		if b, err = B.Join(ctx, tb, "g", "b", false); err != nil {
			t.Fatal(err)
		}
		until(t, b, o, func(m Message) {
			if first.Records == nil && len(m.Records) > 0 && b.Check(m) {
				first = m
			}
		}, func() bool { return first.Records != nil })
	}
	err := A.Reset(context.WithValue(ctx, resetKey{}, true), tb, "g", map[int32]int64{0: 0})
	if b == nil {
		t.Fatal("the reset never read the entry")
	}
	defer b.Leave()
	if first.Records[0].Offset != 5 {
		t.Fatalf("b starts at %d, want 5", first.Records[0].Offset)
	}
	if !errors.Is(err, ErrMembers) {
		t.Fatalf("a reset while a member joined: %v, want %v", err, ErrMembers)
	}
	// b's commits were fenced by the reset: its acknowledgement is
	// refused, and the partition comes back under a newer epoch.
	if r, err := B.Ack(ctx, tb, "g", "b", []Ack{{0, first.Epoch, first.Next}}); err != nil || r[0] == nil {
		t.Fatalf("b's acknowledgement through a fenced committer: %v %v, want refused", r, err)
	}
	var again Message
	until(t, b, o, func(m Message) {
		if len(m.Records) > 0 && m.Epoch > first.Epoch && again.Records == nil && b.Check(m) {
			again = m
		}
	}, func() bool { return again.Records != nil })
	if again.Records[0].Offset != 5 {
		t.Fatalf("b's partition again from %d, want 5 (the committed offset: the reset was refused)", again.Records[0].Offset)
	}
	if r, err := B.Ack(ctx, tb, "g", "b", []Ack{{0, again.Epoch, again.Next}}); err != nil || len(r) > 0 {
		t.Fatalf("b's acknowledgement under the new epoch: %v %v", r, err)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil || c[0] != again.Next {
		t.Fatalf("committed %v %v, want %d", c, err, again.Next)
	}
}
