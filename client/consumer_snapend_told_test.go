package client_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// snapEndTold plays grps to a group member that takes a one-row snapshot
// and acknowledges the row (so the end), the end's acknowledgement taken
// (the service h makes of s answers it), and returns the Next after the
// end's: the stream the row came on dropped (grps[0]), and grps[1] is the
// member's next stream.
func snapEndTold(t *testing.T, s *scripted, h wailv1connect.EventServiceHandler) (client.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	c := snapshotMember(ctx, t, serveEvents(t, h))
	m, err := c.Next(ctx)
	if err != nil || !m.Snapshot {
		t.Fatalf("snapshot row: %v, %v", m, err)
	}
	if err := c.Ack(ctx, m); err != nil {
		t.Fatalf("Ack of the last row: %v", err)
	}
	// The end comes after the row: Next acknowledges it.
	m, err = c.Next(ctx)
	if errors.Is(err, client.ErrAckRefused) {
		m, err = c.Next(ctx)
	}
	return m, err
}

var (
	toldRow    = &wailv1.ChangeEvent{Table: "t", Key: []byte("a"), Version: 1}
	toldChange = &wailv1.ChangeEvent{Table: "t", Key: []byte("b"), Version: 9}
)

// TestConsumerSnapshotTakenAgainWithoutRows: a group member told the
// server its snapshot's end, the stream dropped before the server
// committed it, and joined again the member takes the snapshot again,
// which has no row (every key deleted meanwhile): the next stream's first
// message is the new snapshot's end. Next fails with
// ErrSnapshotInterrupted, as when the rows come again: the first
// snapshot's rows, kept, would stay after the new snapshot's end is
// committed past their deletes. It acknowledged the new end and went on.
func TestConsumerSnapshotTakenAgainWithoutRows(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 200 * time.Millisecond},
		{msgs: []*wailv1.ConsumeResponse{{SnapshotEnd: true, SnapshotId: 8}, {}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	m, err := snapEndTold(t, s, ackingScripted{s})
	if !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next: %v (%v), want ErrSnapshotInterrupted: the group took the snapshot again, without rows", err, m.Event)
	}
}

// endRefusing is a scripted event service that takes the acknowledgements
// of rows and refuses those of a snapshot's end, as the server does past
// the group lease (no snapshot of the member waits for it any more: it
// was aborted, its end not committed).
type endRefusing struct{ *scripted }

func (endRefusing) Ack(_ context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	if req.Msg.SnapshotEnd {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(`not a member: no snapshot of member "m" waits for its end's acknowledgement`))
	}
	return connect.NewResponse(&wailv1.AckResponse{}), nil
}

// TestConsumerSnapshotEndRefused: a group member acknowledged its
// snapshot's end past the group lease: the server refused it (the
// snapshot was aborted, its end not committed) and ended the stream
// (aborted); another member, waiting, took the snapshot and committed its
// end. Next fails with ErrSnapshotInterrupted, as the lease's doc says
// (ConsumerConfig.Start): joined again, the member would get its join and
// the changes after the other member's snapshot, and keep the rows of its
// own, whose deletes came before. Only a refusal of every attempt says
// the end was not taken: one whose answer was lost may have been.
func TestConsumerSnapshotEndRefused(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeAborted, last: 200 * time.Millisecond},
		{msgs: []*wailv1.ConsumeResponse{{}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	m, err := snapEndTold(t, s, endRefusing{s})
	if !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next: %v (%v), want ErrSnapshotInterrupted: the end's acknowledgement was refused, and the end not committed", err, m.Event)
	}
}

// endLost is a scripted event service whose first acknowledgement of a
// snapshot's end is taken but its answer lost (unavailable), and the
// next refused (acknowledged already).
type endLost struct {
	*scripted
	ends atomic.Int32
}

func (e *endLost) Ack(_ context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	switch {
	case !req.Msg.SnapshotEnd:
		return connect.NewResponse(&wailv1.AckResponse{}), nil
	case e.ends.Add(1) == 1:
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("connection reset"))
	}
	return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("its end was acknowledged already"))
}

// TestConsumerSnapshotEndRefusedAfterLost: the refusal of an
// acknowledgement of the end that follows one whose answer was lost says
// nothing (that one may have been taken, and the end committed): the
// member joins again and goes on after its join.
func TestConsumerSnapshotEndRefusedAfterLost(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 500 * time.Millisecond},
		{msgs: []*wailv1.ConsumeResponse{{}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	m, err := snapEndTold(t, s, &endLost{scripted: s})
	if err != nil || m.Event.GetVersion() != toldChange.Version {
		t.Fatalf("Next: %v, %v; want the change after the join", m.Event, err)
	}
}

// endCounting is a scripted event service that takes every
// acknowledgement and counts those of a snapshot's end.
type endCounting struct {
	*scripted
	ends atomic.Int32
}

func (e *endCounting) Ack(_ context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	if req.Msg.SnapshotEnd {
		e.ends.Add(1)
	}
	return connect.NewResponse(&wailv1.AckResponse{}), nil
}

// TestConsumerNoEndAfterInterrupted: once Next failed with
// ErrSnapshotInterrupted (the stream dropped after the snapshot's end
// came, before its last row was acknowledged), an Ack of that row, late
// (a worker that still processed it), does not acknowledge the end: a
// server that has not seen the drop yet would commit it, and the new
// consumer the error asks for would resume after the snapshot, its rows
// discarded as the error asked.
func TestConsumerNoEndAfterInterrupted(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 100 * time.Millisecond},
	}}
	h := &endCounting{scripted: s}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := snapshotMember(ctx, t, serveEvents(t, h))
	row, err := c.Next(ctx)
	if err != nil || !row.Snapshot {
		t.Fatalf("snapshot row: %v, %v", row, err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next: %v, want ErrSnapshotInterrupted", err)
	}
	_ = c.Ack(ctx, row)
	if n := h.ends.Load(); n != 0 {
		t.Fatalf("the Ack of the row after ErrSnapshotInterrupted acknowledged the snapshot's end (%d times): a server that still held the stream would commit it", n)
	}
}

// toldRecording is a scripted event service that takes every
// acknowledgement and records each Consume request's told_snapshot_id.
type toldRecording struct {
	*scripted
	mu   sync.Mutex
	told []uint64
}

func (r *toldRecording) Consume(ctx context.Context, req *connect.Request[wailv1.ConsumeRequest], st *connect.ServerStream[wailv1.ConsumeResponse]) error {
	r.mu.Lock()
	r.told = append(r.told, req.Msg.ToldSnapshotId)
	r.mu.Unlock()
	return r.scripted.Consume(ctx, req, st)
}

func (*toldRecording) Ack(context.Context, *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	return connect.NewResponse(&wailv1.AckResponse{}), nil
}

func (r *toldRecording) requests() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.told...)
}

// TestConsumerSnapshotEndOtherCommitted: a group member acknowledged its
// snapshot's end (7), taken, and the stream dropped before the server
// committed it (the drop cancelled the commit, or the process died);
// another member, waiting, took the snapshot and committed its end (8)
// before this one joined again. The join says whose end the group's
// positions are (committed_snapshot_id, asked with told_snapshot_id):
// another snapshot's, so this member's rows are not the group's (the
// changes between the two ends would be missed), and Next fails with
// ErrSnapshotInterrupted. Before, the join said nothing and the member
// went on with its rows kept.
func TestConsumerSnapshotEndOtherCommitted(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 200 * time.Millisecond},
		{msgs: []*wailv1.ConsumeResponse{{CommittedSnapshotId: 8}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	h := &toldRecording{scripted: s}
	m, err := snapEndTold(t, s, h)
	if !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next: %v (%v), want ErrSnapshotInterrupted: the group's positions are another member's snapshot's end", err, m.Event)
	}
	if got := h.requests(); len(got) != 2 || got[0] != 0 || got[1] != 7 {
		t.Fatalf("told_snapshot_id of the Consume requests: %v, want [0 7]", got)
	}
}

// TestConsumerSnapshotEndOwnCommitted: as above, but the group's
// positions are this member's snapshot's end (the server committed it
// after the drop): the member goes on after its join, its rows kept.
func TestConsumerSnapshotEndOwnCommitted(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 200 * time.Millisecond},
		{msgs: []*wailv1.ConsumeResponse{{CommittedSnapshotId: 7}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	h := &toldRecording{scripted: s}
	m, err := snapEndTold(t, s, h)
	if err != nil || m.Event.GetVersion() != toldChange.Version {
		t.Fatalf("Next: %v, %v; want the change after the join", m.Event, err)
	}
	if got := h.requests(); len(got) != 2 || got[1] != 7 {
		t.Fatalf("told_snapshot_id of the Consume requests: %v, want [0 7]", got)
	}
}

// TestConsumerSnapshotEndToldAcrossFailedJoin: as
// TestConsumerSnapshotEndOtherCommitted, but the first join again fails
// (the server could not read whose snapshot the group's positions are:
// unavailable, before any message): the member keeps its told end across
// it, asks again on the next stream, and fails there with
// ErrSnapshotInterrupted.
func TestConsumerSnapshotEndToldAcrossFailedJoin(t *testing.T) {
	t.Parallel()
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		{msgs: []*wailv1.ConsumeResponse{{Event: toldRow, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 200 * time.Millisecond},
		{code: connect.CodeUnavailable},
		{msgs: []*wailv1.ConsumeResponse{{CommittedSnapshotId: 8}, {Event: toldChange, Partition: 1, Offset: 5, Epoch: 1, Next: 6}}, hold: true},
	}}
	h := &toldRecording{scripted: s}
	m, err := snapEndTold(t, s, h)
	if !errors.Is(err, client.ErrSnapshotInterrupted) {
		t.Fatalf("Next: %v (%v), want ErrSnapshotInterrupted: the group's positions are another member's snapshot's end", err, m.Event)
	}
	if got := h.requests(); len(got) != 3 || got[0] != 0 || got[1] != 7 || got[2] != 7 {
		t.Fatalf("told_snapshot_id of the Consume requests: %v, want [0 7 7]", got)
	}
}
