package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// SinkGroupPrefix begins the groups of webhook sinks (package sink): no
// member may join them over the API.
const SinkGroupPrefix = "sink."

// WithGroups serves consumer groups (Consume, Ack and the group admin
// calls) on groups; call it before serving. Close closes them.
func (s *Service) WithGroups(g *group.Groups) *Service {
	s.groups = g
	return s
}

// groupTable checks the table and the group's name and returns the table.
func (s *Service) groupTable(table, name string) (group.Table, error) {
	if s.groups == nil {
		return group.Table{}, connect.NewError(connect.CodeUnimplemented, errors.New("consumer groups are not served here"))
	}
	n, ok := s.partitions(table)
	if !ok {
		return group.Table{}, connect.NewError(connect.CodeNotFound, fmt.Errorf("table %q does not exist: create it with `wail table create %s`", table, table))
	}
	if err := group.ValidateName("group", name); err != nil {
		return group.Table{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return group.Table{Name: table, Topic: Topic(table), Partitions: n}, nil
}

// Consume makes the caller a member of a consumer group and streams the
// events of the partitions it owns (see group.Groups).
func (s *Service) Consume(ctx context.Context, req *connect.Request[wailv1.ConsumeRequest], stream *connect.ServerStream[wailv1.ConsumeResponse]) error {
	release, err := s.admit(clientOf(req.Peer().Addr))
	if err != nil {
		return err
	}
	defer release()
	m := req.Msg
	t, err := s.groupTable(m.Table, m.Group)
	if err != nil {
		return err
	}
	if err := group.ValidateName("member", m.Member); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	if strings.HasPrefix(m.Group, SinkGroupPrefix) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("group %q: names starting with %q belong to webhook sinks (`wail sink ls %s`)",
			m.Group, SinkGroupPrefix, m.Table))
	}
	var latest group.StartLatest
	switch m.Start {
	case "", "beginning":
	case "latest":
		latest = true
	case "snapshot":
		if s.snapshots.Source == nil {
			return connect.NewError(connect.CodeFailedPrecondition, errors.New(`this server's store cannot list keys: start "snapshot" is not available; use "beginning"`))
		}
		if err := stream.Send(nil); err != nil {
			return err
		}
		if err := s.snapshotGroup(ctx, t, m.Group, m.Member, stream); err != nil {
			return err
		}
	default:
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(`invalid start %q: use "beginning", "latest" or "snapshot" (where a new group starts)`, m.Start))
	}
	sess, err := s.groups.Join(ctx, t, m.Group, m.Member, latest)
	if err != nil {
		if errors.Is(err, group.ErrDuplicateMember) {
			return connect.NewError(connect.CodeAlreadyExists, err)
		}
		return connect.NewError(connect.CodeUnavailable, err)
	}
	defer sess.Leave()
	if err := stream.Send(nil); err != nil {
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
		case errors.Is(err, group.ErrLeaseExpired):
			return connect.NewError(connect.CodeAborted, err)
		case err != nil:
			return connect.NewError(connect.CodeUnavailable, err)
		}
		if err := s.sendGroupMessage(stream, msg, sess.Check); err != nil {
			return err
		}
	}
}

func (s *Service) sendGroupMessage(stream *connect.ServerStream[wailv1.ConsumeResponse], msg group.Message, check func(group.Message) bool) error {
	if msg.Granted != nil || msg.Revoked != nil {
		r := &wailv1.ConsumeResponse{Revoked: msg.Revoked}
		for _, g := range msg.Granted {
			r.Granted = append(r.Granted, &wailv1.PartitionGrant{Partition: g.Partition, Epoch: g.Epoch, Offset: g.Offset})
		}
		return stream.Send(r)
	}
	if !check(msg) {
		return nil // the partition moved on
	}
	for i, rec := range msg.Records {
		e, ok, err := Decode(&rec)
		if !ok || err != nil {
			continue // not an event (subscribers skip it too)
		}
		ev := e.Proto()
		next := rec.Offset + 1
		if i == len(msg.Records)-1 {
			next = msg.Next // the records passed after it (tombstones) too
		}
		if err := stream.Send(&wailv1.ConsumeResponse{Event: ev, Partition: msg.Partition, Offset: rec.Offset, Epoch: msg.Epoch, Next: next}); err != nil {
			return err
		}
	}
	return nil
}

// Ack commits a member's acknowledgements durably.
func (s *Service) Ack(ctx context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	m := req.Msg
	t, err := s.groupTable(m.Table, m.Group)
	if err != nil {
		return nil, err
	}
	acks := make([]group.Ack, len(m.Acks))
	for i, a := range m.Acks {
		acks[i] = group.Ack{Partition: a.Partition, Epoch: a.Epoch, Next: a.Next}
	}
	refused, err := s.groups.Ack(ctx, t, m.Group, m.Member, acks)
	if errors.Is(err, group.ErrNotMember) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	resp := &wailv1.AckResponse{}
	for p, err := range refused {
		resp.Refused = append(resp.Refused, &wailv1.AckRefused{Partition: p, Reason: err.Error()})
	}
	return connect.NewResponse(resp), nil
}

// ListGroups lists a table's consumer groups.
func (s *Service) ListGroups(ctx context.Context, req *connect.Request[wailv1.ListGroupsRequest]) (*connect.Response[wailv1.ListGroupsResponse], error) {
	t, err := s.groupTable(req.Msg.Table, "x")
	if err != nil {
		return nil, err
	}
	names, err := s.groups.List(ctx, t)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	return connect.NewResponse(&wailv1.ListGroupsResponse{Groups: names}), nil
}

// DescribeGroup returns a group's members and partitions.
func (s *Service) DescribeGroup(ctx context.Context, req *connect.Request[wailv1.DescribeGroupRequest]) (*connect.Response[wailv1.DescribeGroupResponse], error) {
	t, err := s.groupTable(req.Msg.Table, req.Msg.Group)
	if err != nil {
		return nil, err
	}
	members, parts, err := s.groups.Describe(ctx, t, req.Msg.Group)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	snapMember, snapEvents := s.groupSnaps.progress(t.Name, req.Msg.Group)
	if parts == nil && snapMember == "" {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("table %s has no group %q: `wail group ls %s` lists them", t.Name, req.Msg.Group, t.Name))
	}
	return connect.NewResponse(&wailv1.DescribeGroupResponse{Members: members, Partitions: groupPartitions(parts),
		SnapshotMember: snapMember, SnapshotEvents: snapEvents}), nil
}

func groupPartitions(parts []group.PartitionState) []*wailv1.GroupPartition {
	out := make([]*wailv1.GroupPartition, len(parts))
	for i, p := range parts {
		gp := &wailv1.GroupPartition{Partition: p.Partition, Committed: p.Committed, End: p.End, Owner: p.Owner, Epoch: p.Epoch,
			Lag: p.End - max(p.Committed, 0)}
		if !p.Unacked.IsZero() {
			gp.UnackedMs = time.Since(p.Unacked).Milliseconds()
		}
		out[i] = gp
	}
	return out
}

// ResetGroup moves a group without live members to a start position.
func (s *Service) ResetGroup(ctx context.Context, req *connect.Request[wailv1.ResetGroupRequest]) (*connect.Response[wailv1.ResetGroupResponse], error) {
	t, err := s.groupTable(req.Msg.Table, req.Msg.Group)
	if err != nil {
		return nil, err
	}
	start, err := ParseStart(req.Msg.To)
	if err == nil && start.Snapshot {
		err = errors.New(`a group cannot be reset to "snapshot"`)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	offsets, err := s.startOffsets(ctx, t.Name, t.Partitions, start)
	if err != nil {
		return nil, err
	}
	commit := make(map[int32]int64, len(offsets))
	for p, o := range offsets {
		commit[int32(p)] = o
	}
	if err := s.groups.Reset(ctx, t, req.Msg.Group, commit); err != nil {
		if errors.Is(err, group.ErrMembers) {
			return nil, connect.NewError(connect.CodeFailedPrecondition, err)
		}
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	_, parts, err := s.groups.Describe(ctx, t, req.Msg.Group)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	return connect.NewResponse(&wailv1.ResetGroupResponse{Partitions: groupPartitions(parts)}), nil
}

// snapshotGroup sends a start "snapshot" group's snapshot to member when
// the group has no committed positions yet: one member at a time takes
// the whole snapshot (every partition), and its end is committed as the
// group's positions only once all of it was sent; a member that stops
// half way leaves the group without positions, and the next member
// takes the snapshot again. Members that wait for it then join from the
// committed positions.
func (s *Service) snapshotGroup(ctx context.Context, t group.Table, name, member string, stream *connect.ServerStream[wailv1.ConsumeResponse]) error {
	_, err := s.groupSnaps.take(ctx, t.Name, name, member, func(count func(int)) (bool, error) {
		return SnapshotGroup(ctx, s.Stream, s.groups, t, name, 0, func(evs []*wailv1.StreamedEvent) error {
			for _, e := range evs {
				if err := stream.Send(&wailv1.ConsumeResponse{Event: e.Event, Partition: e.Partition, Offset: e.Offset, Snapshot: true}); err != nil {
					return err
				}
			}
			count(len(evs))
			return nil
		})
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, group.ErrMembers):
		return connect.NewError(connect.CodeAborted, fmt.Errorf(`group %q: a member joined from "beginning" or "latest" during the snapshot, whose end was not committed: consume again (start "snapshot" takes it again)`, name))
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(connect.CodeUnavailable, err)
}
