package eventbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestGroupSnapshotEndStaleAck: the acknowledgement of a snapshot's end
// belongs to the snapshot it answers. Member a takes the snapshot, gets
// its end and is too slow: the server ends its stream (aborted) and
// commits nothing. Member a consumes again (a new Consumer, the same
// member id), takes the snapshot again and gets its end; meanwhile the
// first consumer's workers finish the old rows and acknowledge them. That
// must not commit the new snapshot's end: none of its rows was processed
// (before, the end's acknowledgement named only the member, and the old
// rows' acknowledgement ended the new snapshot).
//
// The group lease is 6 s: the second snapshot's end must still wait for
// its acknowledgement after the old rows' acknowledgements and half a
// second of checks, which a loaded machine stretched past a 2 s lease
// (the end aborted: "no snapshot of member "a" ... waits for its end's
// acknowledgement").
func TestGroupSnapshotEndStaleAck(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := snapshotAckEnv(ctx, t, 6*time.Second)
	old, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "s", Group: "g", Member: "a", Start: "snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var rows []client.Message
	for len(rows) < snapshotAckRows {
		m, err := old.Next(ctx)
		if err != nil {
			t.Fatalf("after %d rows: %v", len(rows), err)
		}
		rows = append(rows, m)
	}
	// Its end comes and goes unanswered: the stream ends after the lease.
	if _, err := old.Next(ctx); !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("the first snapshot, unanswered: %v; want ErrSnapshotInterrupted", err)
	}
	// a again, on a stream of its own that waits at the new snapshot's end.
	s, err := events.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "s", Group: "g", Member: "a", Start: "snapshot", AckSnapshot: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for s.Receive() && !s.Msg().SnapshotEnd {
		if s.Msg().Event != nil {
			n++
		}
	}
	if n != snapshotAckRows {
		t.Fatalf("the second snapshot: %d rows before its end (%v); want %d", n, s.Err(), snapshotAckRows)
	}
	id := s.Msg().SnapshotId
	// The first consumer's rows are processed now, late.
	for _, m := range rows {
		if err := old.Ack(ctx, m); err != nil && !errors.Is(err, client.ErrAckRefused) {
			t.Fatal(err)
		}
	}
	for range 10 {
		if hasPositions(ctx, t, events) {
			t.Fatal("the new snapshot's end was committed by the acknowledgement of the previous snapshot's rows")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The acknowledgement of this snapshot's end commits it: a joins.
	if _, err := events.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: "s", Group: "g", Member: "a", SnapshotEnd: true, SnapshotId: id})); err != nil {
		t.Fatalf("the acknowledgement of the snapshot's end that waits: %v", err)
	}
	if !s.Receive() || s.Msg().Event != nil || s.Msg().Snapshot || s.Msg().SnapshotEnd {
		t.Fatalf("after the end's acknowledgement: %v, %v; want the join", s.Msg(), s.Err())
	}
	if !hasPositions(ctx, t, events) {
		t.Fatal("joined, but the group has no positions")
	}
}
