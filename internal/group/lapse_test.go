package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

// lapsedRig is a shared group's member a on process A holding partition
// 0 at epoch 7 with a batch of it read, without A's sync loop (nothing
// lapses or claims behind the test): the test moves A's lease (valid).
func lapsedRig(t *testing.T) (*Groups, Table, *Session, Message) {
	t.Helper()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	G := New(l, time.Minute)
	t.Cleanup(G.Close)
	G.shared, G.proc, G.procLease = &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, "A", time.Second
	s, err := G.join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	gr := s.gr
	gr.mu.Lock()
	gr.sh.valid = time.Now().Add(time.Hour)
	gr.apply(gr.core.Grant(0, "a", 7, 0))
	gr.mu.Unlock()
	var batch Message
	until(t, s, owned{}, func(m Message) {
		if batch.Records == nil && len(m.Records) > 0 {
			batch = m
		}
	}, func() bool { return batch.Records != nil })
	return G, tb, s, batch
}

// TestLapsedLeaseSendsAndCommitsNothing: once this process's lease on
// a shared group lapsed (before any sync took the partitions away), its
// member's batches are not let through, it owns nothing, and its
// acknowledgement is refused without a commit: another process may own
// the partition by now.
func TestLapsedLeaseSendsAndCommitsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	G, tb, s, batch := lapsedRig(t)
	if !s.Check(batch) || !s.Owns(0, 7) {
		t.Fatal("within the lease: the batch was refused or the partition not owned")
	}
	s.gr.mu.Lock()
	s.gr.sh.valid = time.Now().Add(-time.Millisecond)
	s.gr.mu.Unlock()
	if s.Owns(0, 7) {
		t.Fatal("the partition is owned after the process's lease lapsed")
	}
	if s.Check(batch) {
		t.Fatal("a batch was let through after the process's lease lapsed")
	}
	r, err := G.Ack(ctx, tb, "g", "a", []Ack{{0, 7, batch.Next}})
	if err != nil || !errors.Is(r[0], ErrNotOwner) {
		t.Fatalf("ack after the lease lapsed: %v %v, want partition 0 refused", r, err)
	}
	if c, err := G.log.Committed(ctx, LogGroup("g"), tb.Topic); err != nil || len(c) != 0 {
		t.Fatalf("committed %v %v after the lease lapsed, want nothing", c, err)
	}
}

// TestLeaveOfAnEndedSessionSparesItsSuccessor: a session that was ended
// (its lease expired, or it left) and whose stream calls Leave again
// after its member joined again under the same id leaves nothing: the
// new session stays a member (b keeps the group loaded throughout).
func TestLeaveOfAnEndedSessionSparesItsSuccessor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	G := New(l, time.Minute)
	defer G.Close()
	b, err := G.Join(ctx, tb, "g", "b", false) // keeps the group loaded
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	s1, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	s1.Leave()
	s2, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Leave()
	s1.Leave() // the first stream's handler, late
	select {
	case <-s2.Done():
		t.Fatalf("the new session ended: %v", s2.Err())
	default:
	}
	members, parts, err := G.Describe(ctx, tb, "g")
	if err != nil || len(members) != 2 || members[1] != "a" || parts[0].Owner != "b" {
		t.Fatalf("describe: %v %+v %v, want b and a, b owning partition 0", members, parts, err)
	}
	if _, err := G.Ack(ctx, tb, "g", "a", nil); err != nil {
		t.Fatalf("the new session's ack: %v", err)
	}
}

// TestGrantAfterTheLeaseLapsedGrantsNothing: a sync's claims whose
// committed offsets were read after this process's lease lapsed are not
// granted (released at the next sync): another process may own them.
func TestGrantAfterTheLeaseLapsedGrantsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	if err := l.Commit(ctx, LogGroup("g"), tb.Topic, map[int32]int64{1: 3}); err != nil {
		t.Fatal(err)
	}
	G := New(l, time.Minute)
	t.Cleanup(G.Close)
	G.shared, G.proc, G.procLease = &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, "A", time.Second
	s, err := G.join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	gr := s.gr
	gr.mu.Lock()
	gr.sh.valid = time.Now().Add(-time.Millisecond)
	gr.mu.Unlock()
	plan := Plan{Next: &SharedState{}, Claims: []Grant{{Partition: 1, Epoch: 9}}, ClaimMembers: []string{"a"}}
	if err := G.grant(ctx, gr, plan); err != nil {
		t.Fatal(err)
	}
	gr.mu.Lock()
	o, _ := gr.core.Owner(1)
	gr.mu.Unlock()
	if o != "" {
		t.Fatalf("partition 1 granted to %q after the lease lapsed", o)
	}
}
