package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/sink"
)

// Events is what EventService serves: the event bus's streams and its
// consumer groups (eventbus.Service). Its errors are eventbus's and
// group's sentinels (eventCode maps them); any other is the log failing.
type Events interface {
	// Subscribe streams a table's events; started gets the cursor of
	// where the stream starts ("" for a snapshot); encoded: the messages
	// go out as binary protobuf, and their events may be left encoded
	// (see eventbus.Service.Subscribe).
	Subscribe(ctx context.Context, req *wailv1.SubscribeRequest, encoded bool, started func(start string) error, send func(*wailv1.SubscribeResponse) error) error
	// JoinGroup makes member a member of a group, after handing it the
	// group's snapshot through snap for start "snapshot".
	JoinGroup(ctx context.Context, table, name, member, start string, snap eventbus.GroupSnapshot) (*group.Session, error)
	AckGroup(ctx context.Context, table, name, member string, acks []group.Ack) (refused map[int32]error, err error)
	// AckSnapshotEnd acknowledges the end of the snapshot member takes
	// (GroupSnapshot.End, which gave id).
	AckSnapshotEnd(table, name, member string, id uint64) error
	// CommittedSnapshot returns the id of the snapshot whose end the
	// group's positions were committed at (0: not known); it fails past
	// two group leases.
	CommittedSnapshot(ctx context.Context, table, name string) (uint64, error)
	ListGroups(ctx context.Context, table string) ([]string, error)
	DescribeGroup(ctx context.Context, table, name string) (eventbus.GroupDescription, error)
	ResetGroup(ctx context.Context, table, name, to string) ([]group.PartitionState, error)
}

// EventService serves wail.v1.EventService on Events.
type EventService struct {
	bus       Events
	streams   *streamSlots
	closing   chan struct{}
	closeOnce sync.Once
}

var _ wailv1connect.EventServiceHandler = (*EventService)(nil)

// eventStreams words the refusals of event streams (Subscribe and
// Consume count together).
var eventStreams = slotKind{what: "event streams", total: "api.max_subscriptions", perClient: "api.max_subscriptions_per_client",
	hint: "close one first, or retry later (a stream that dropped is counted until the server sees it end)"}

// NewEventService returns the EventService handler, without limits on
// the streams open (see WithLimits).
func NewEventService(bus Events) *EventService {
	return &EventService{bus: bus, streams: newSlots(eventStreams, SlotLimits{}), closing: make(chan struct{})}
}

// WithLimits bounds the event streams (Subscribe and Consume) open:
// MaxStreams is api.max_subscriptions, MaxStreamsPerClient
// api.max_subscriptions_per_client. Call it before serving.
func (s *EventService) WithLimits(l SlotLimits) *EventService {
	s.streams = newSlots(eventStreams, l)
	return s
}

// Open returns how many event streams are open.
func (s *EventService) Open() int { return s.streams.Open() }

// Close ends the group members' streams (at server shutdown; the bus's
// Close ends the Subscribe streams).
func (s *EventService) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// StartCursorHeader is the Subscribe response header holding the cursor
// of where the stream starts (not for from "snapshot"): a client that
// loses the stream before any event resumes there, without a gap.
const StartCursorHeader = "Wail-Start-Cursor"

// Subscribe streams the final events of a table
// (eventbus.Service.Subscribe) until the client goes away, the server
// shuts down, or, with until_end, the end of what was published when it
// started; the response headers carry where it starts
// (StartCursorHeader).
func (s *EventService) Subscribe(ctx context.Context, req *connect.Request[wailv1.SubscribeRequest], stream *connect.ServerStream[wailv1.SubscribeResponse]) error {
	release, err := s.streams.take(hostOf(req.Peer().Addr))
	if err != nil {
		return err
	}
	defer release()
	return eventError(s.bus.Subscribe(ctx, req.Msg, binaryProto(req.Header()), func(start string) error {
		if start != "" {
			stream.ResponseHeader().Set(StartCursorHeader, start)
		}
		return stream.Send(nil)
	}, stream.Send))
}

// binaryProto reports whether a request's content type makes connect
// encode the response messages with its binary protobuf codec (connect,
// gRPC and gRPC-Web, "proto" or gRPC's default): only then may a
// Subscribe stream's events stay in their stored encoding. Any other
// (JSON, or one this list does not know) gets events decoded.
func binaryProto(h http.Header) bool {
	switch h.Get("Content-Type") {
	case "application/connect+proto", "application/grpc", "application/grpc+proto", "application/grpc-web", "application/grpc-web+proto":
		return true
	}
	return false
}

// Consume makes the caller a member of a consumer group and streams the
// events of the partitions it owns (see group.Groups); with start
// "snapshot", a new group's snapshot comes first (events marked
// snapshot, without epoch or next: eventbus.Service.JoinGroup).
func (s *EventService) Consume(ctx context.Context, req *connect.Request[wailv1.ConsumeRequest], stream *connect.ServerStream[wailv1.ConsumeResponse]) error {
	release, err := s.streams.take(hostOf(req.Peer().Addr))
	if err != nil {
		return err
	}
	defer release()
	m := req.Msg
	snap := eventbus.GroupSnapshot{
		Started: func() error { return stream.Send(nil) },
		Deliver: func(evs []*wailv1.StreamedEvent) error { return sendSnapshot(stream, evs) },
	}
	if m.AckSnapshot {
		snap.End = func(id uint64) error {
			return stream.Send(&wailv1.ConsumeResponse{SnapshotEnd: true, SnapshotId: id})
		}
	}
	sess, err := s.bus.JoinGroup(ctx, m.Table, m.Group, m.Member, m.Start, snap)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return eventError(err)
	}
	defer sess.Leave()
	// The join, an empty message (not Send(nil), which only flushes the
	// headers and reaches no client): after a snapshot it tells the member
	// that the snapshot is over and its end committed, even if no
	// partition is granted to it yet. To a member that told a snapshot's
	// end on a stream that dropped, it says whose snapshot's end the
	// group's positions are: its own, or another member's that was
	// committed instead (its rows are not the group's).
	join := &wailv1.ConsumeResponse{}
	if m.ToldSnapshotId != 0 {
		id, err := s.bus.CommittedSnapshot(ctx, m.Table, m.Group)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return eventError(err)
		}
		join.CommittedSnapshotId = id
	}
	if err := stream.Send(join); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		msg, err := sess.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return eventError(err)
		}
		if err := sendGroupMessage(stream.Send, msg, sess.Check); err != nil {
			return err
		}
	}
}

// sendSnapshot sends a batch of a group's snapshot.
func sendSnapshot(stream *connect.ServerStream[wailv1.ConsumeResponse], evs []*wailv1.StreamedEvent) error {
	for _, e := range evs {
		if err := stream.Send(&wailv1.ConsumeResponse{Event: e.Event, Partition: e.Partition, Offset: e.Offset, Snapshot: true}); err != nil {
			return err
		}
	}
	return nil
}

// sendGroupMessage sends a member's partitions granted or revoked, or the
// events of a batch of records unless its partition moved on (check).
func sendGroupMessage(send func(*wailv1.ConsumeResponse) error, msg group.Message, check func(group.Message) bool) error {
	if msg.Granted != nil || msg.Revoked != nil {
		r := &wailv1.ConsumeResponse{Revoked: msg.Revoked}
		for _, g := range msg.Granted {
			r.Granted = append(r.Granted, &wailv1.PartitionGrant{Partition: g.Partition, Epoch: g.Epoch, Offset: g.Offset})
		}
		return send(r)
	}
	if msg.Gap != nil { // retention removed what the member was to read
		if !check(msg) {
			return nil // the partition moved on
		}
		return send(&wailv1.ConsumeResponse{Partition: msg.Partition, Epoch: msg.Epoch, Next: msg.Next,
			Gap: &wailv1.RetentionGap{Partition: msg.Partition, From: msg.Gap.From, To: msg.Gap.To}})
	}
	var out []*wailv1.ConsumeResponse
	for _, rec := range msg.Records {
		e, ok, err := eventbus.Decode(&rec)
		if !ok || err != nil {
			continue // not an event (subscribers skip it too)
		}
		out = append(out, &wailv1.ConsumeResponse{Event: e.Proto(), Partition: msg.Partition, Offset: rec.Offset, Epoch: msg.Epoch, Next: rec.Offset + 1})
	}
	if len(out) == 0 {
		// Nothing the member can acknowledge: the records are passed
		// without waiting for an acknowledgement (as a batch of
		// tombstones), else the member's lease expired over them.
		msg.Records = nil
	}
	if !check(msg) {
		return nil // the partition moved on
	}
	for i, r := range out {
		if i == len(out)-1 {
			r.Next = msg.Next // the records passed after it (tombstones, records that are not events) too
		}
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// Ack commits a member's acknowledgements durably.
func (s *EventService) Ack(ctx context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	m := req.Msg
	if m.SnapshotEnd {
		if len(m.Acks) > 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument,
				errors.New("an acknowledgement of a snapshot's end carries no partition acknowledgements: send them in another request"))
		}
		if err := s.bus.AckSnapshotEnd(m.Table, m.Group, m.Member, m.SnapshotId); err != nil {
			return nil, eventError(err)
		}
		return connect.NewResponse(&wailv1.AckResponse{}), nil
	}
	acks := make([]group.Ack, len(m.Acks))
	for i, a := range m.Acks {
		acks[i] = group.Ack{Partition: a.Partition, Epoch: a.Epoch, Next: a.Next}
	}
	refused, err := s.bus.AckGroup(ctx, m.Table, m.Group, m.Member, acks)
	if err != nil {
		return nil, eventError(err)
	}
	resp := &wailv1.AckResponse{}
	for p, err := range refused {
		resp.Refused = append(resp.Refused, &wailv1.AckRefused{Partition: p, Reason: err.Error()})
	}
	return connect.NewResponse(resp), nil
}

// ListGroups lists a table's consumer groups.
func (s *EventService) ListGroups(ctx context.Context, req *connect.Request[wailv1.ListGroupsRequest]) (*connect.Response[wailv1.ListGroupsResponse], error) {
	names, err := s.bus.ListGroups(ctx, req.Msg.Table)
	if err != nil {
		return nil, eventError(err)
	}
	return connect.NewResponse(&wailv1.ListGroupsResponse{Groups: names}), nil
}

// DescribeGroup returns a group's members and partitions, and the member
// taking its snapshot, if one is.
func (s *EventService) DescribeGroup(ctx context.Context, req *connect.Request[wailv1.DescribeGroupRequest]) (*connect.Response[wailv1.DescribeGroupResponse], error) {
	d, err := s.bus.DescribeGroup(ctx, req.Msg.Table, req.Msg.Group)
	if err != nil {
		return nil, eventError(err)
	}
	return connect.NewResponse(&wailv1.DescribeGroupResponse{Members: d.Members, Partitions: groupPartitions(d.Partitions),
		SnapshotMember: d.SnapshotMember, SnapshotEvents: d.SnapshotEvents}), nil
}

// ResetGroup moves a group without live members to a start position.
func (s *EventService) ResetGroup(ctx context.Context, req *connect.Request[wailv1.ResetGroupRequest]) (*connect.Response[wailv1.ResetGroupResponse], error) {
	parts, err := s.bus.ResetGroup(ctx, req.Msg.Table, req.Msg.Group, req.Msg.To)
	if err != nil {
		return nil, eventError(err)
	}
	return connect.NewResponse(&wailv1.ResetGroupResponse{Partitions: groupPartitions(parts)}), nil
}

func groupPartitions(parts []group.PartitionState) []*wailv1.GroupPartition {
	out := make([]*wailv1.GroupPartition, len(parts))
	for i, p := range parts {
		gp := &wailv1.GroupPartition{Partition: p.Partition, Committed: p.Committed, End: p.End, Owner: p.Owner, Epoch: p.Epoch,
			Lag: p.End - max(p.Committed, 0), Revoking: p.Revoking}
		if !p.Unacked.IsZero() {
			gp.UnackedMs = time.Since(p.Unacked).Milliseconds()
		}
		out[i] = gp
	}
	return out
}

// eventCode is the Connect/gRPC code of an error of Events.
func eventCode(err error) connect.Code {
	switch {
	case errors.Is(err, group.ErrLeaseExpired), errors.Is(err, eventbus.ErrSnapshotAborted):
		return connect.CodeAborted
	case errors.Is(err, eventbus.ErrNotFound), errors.Is(err, group.ErrTableDropped):
		return connect.CodeNotFound
	case errors.Is(err, eventbus.ErrInvalid), errors.Is(err, eventbus.ErrBadFrom), errors.Is(err, eventbus.ErrBadCursor),
		errors.Is(err, group.ErrInvalidAck):
		return connect.CodeInvalidArgument
	case errors.Is(err, eventbus.ErrNoSnapshots), errors.Is(err, group.ErrNotMember), errors.Is(err, group.ErrMembers),
		errors.Is(err, group.ErrPositionLost): // joining again meets it again: an operator resets the group
		return connect.CodeFailedPrecondition
	case errors.Is(err, eventbus.ErrNoGroups):
		return connect.CodeUnimplemented
	case errors.Is(err, eventbus.ErrSnapshotBusy):
		return connect.CodeResourceExhausted
	case errors.Is(err, eventbus.ErrRetentionGap):
		return connect.CodeOutOfRange
	case errors.Is(err, group.ErrDuplicateMember):
		return connect.CodeAlreadyExists
	case errors.Is(err, sink.ErrSyncBusy): // a sink's runners are starting or stopping: retry
		return connect.CodeUnavailable
	}
	return connect.CodeUnavailable // the log failed: retry
}

// eventError is err with its code; nil stays nil, and an error that has
// one (a failed send) keeps it. A retention gap (fail_on_gap) carries
// the range removed as a RetentionGap detail.
func eventError(err error) error {
	var ce *connect.Error
	if err == nil || errors.As(err, &ce) {
		return err
	}
	ce = connect.NewError(eventCode(err), err)
	if ge, ok := errors.AsType[*eventbus.GapError](err); ok {
		if d, derr := connect.NewErrorDetail(ge.Gap); derr == nil {
			ce.AddDetail(d)
		}
	}
	return ce
}
