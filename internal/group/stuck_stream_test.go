package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStuckStreamExpires: a member whose stream stopped taking messages
// (a client that never reads: the send of a grant blocks in HTTP/2 flow
// control, here a Next never called again) is ended after the lease, and
// its partitions go to the others. Before, only events delivered and not
// acknowledged started a member's lease: a member stuck on a grant of
// idle partitions held them for good, and the group never read them
// again (a silent freeze).
func TestStuckStreamExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 0) // idle: no events to deliver, so no acknowledgement is ever due
	lease := 200 * time.Millisecond
	G := New(l, lease)
	defer G.Close()
	stuck, err := G.Join(ctx, tb, "g", "stuck", false)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, stuck); len(m.Granted) != 2 {
		t.Fatalf("first message %+v, want both partitions granted", m)
	}
	// The stream is sending that grant, and never asks for more.
	other, err := G.Join(ctx, tb, "g", "other", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	until(t, other, o, nil, func() bool { return len(o) == 2 })
	select {
	case <-stuck.Done():
		if !errors.Is(stuck.Err(), ErrLeaseExpired) {
			t.Fatalf("the stuck member ended with %v, want %v", stuck.Err(), ErrLeaseExpired)
		}
	default:
		t.Fatal("the other member owns both partitions but the stuck one was not ended")
	}
}

// TestSlowStreamKept: a member that takes each message within the lease
// stays, however long it is idle.
func TestSlowStreamKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 0)
	lease := 100 * time.Millisecond
	G := New(l, lease)
	defer G.Close()
	s, err := G.Join(ctx, tb, "g", "idle", false)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s) // the grant, sent
	wait, cancel := context.WithTimeout(ctx, 5*lease)
	defer cancel()
	if m, err := s.Next(wait); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an idle member waiting for its next message: %+v, %v; want it kept (the wait's deadline)", m, err)
	}
}

// TestWithoutAckLeaseKeepsMembers: on Groups WithoutAckLease (webhook
// sinks), a member that holds events unacknowledged, and whose stream
// takes no message, for longer than the lease is kept with its
// partitions.
func TestWithoutAckLeaseKeepsMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 3)
	lease := 100 * time.Millisecond
	G := New(l, lease).WithoutAckLease()
	defer G.Close()
	s, err := G.Join(ctx, tb, "g", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	next(t, s) // the grant
	if b := next(t, s); !s.Check(b) || len(b.Records) == 0 {
		t.Fatalf("batch %+v", b)
	}
	time.Sleep(5 * lease) // unacknowledged, and no Next
	select {
	case <-s.Done():
		t.Fatalf("the member was ended: %v", s.Err())
	default:
	}
	if _, err := G.Ack(ctx, tb, "g", "m", []Ack{{Partition: 0, Epoch: 0, Next: 1}}); err != nil {
		t.Fatalf("ack (which checks the leases too): %v", err)
	}
	select {
	case <-s.Done():
		t.Fatalf("the member was ended at an acknowledgement: %v", s.Err())
	default:
	}
}
