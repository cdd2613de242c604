package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

// TableDropped ends the members of the consumer groups of table, created
// at created (Unix microseconds, 0 unknown), which was dropped
// (group.ErrTableDropped); webhook sinks' groups are left to their
// manager, which drops the table's sinks.
func (s *Service) TableDropped(table string, created int64) {
	if s.groups != nil {
		s.groups.TableDropped(table, created, func(name string) bool { return strings.HasPrefix(name, SinkGroupPrefix) })
	}
}

// groupTable checks the table and the group's name and returns the table.
func (s *Service) groupTable(table, name string) (group.Table, error) {
	if s.groups == nil {
		return group.Table{}, ErrNoGroups
	}
	n, ok := s.partitions(table)
	if !ok {
		return group.Table{}, unknownTable(table)
	}
	if err := group.ValidateName("group", name); err != nil {
		return group.Table{}, invalid(err)
	}
	return group.Table{Name: table, Topic: Topic(table), Partitions: n, Created: s.createdOf(table)}, nil
}

// GroupSnapshot hands a member joining a start "snapshot" group the
// group's snapshot (JoinGroup): Started is called once the request is
// checked, before the snapshot is waited for or taken; Deliver with each
// batch of its events, in the order of a from "snapshot" stream.
type GroupSnapshot struct {
	Started func() error
	Deliver func([]*wailv1.StreamedEvent) error
	// End, if set, tells the member that the rows are over, with the id
	// its acknowledgement carries; the snapshot's end is then committed
	// only once the member acknowledged it (AckSnapshotEnd), within the
	// group lease.
	End func(id uint64) error
}

// JoinGroup makes member a member of the consumer group name of table
// (see group.Groups.Join); start is where a new group starts: "" or
// "beginning", "latest", or "snapshot": the group's snapshot is first
// taken by this member through snap (snapshotGroup), unless the group has
// positions. The member takes its messages from the session until it
// leaves. Errors: ErrNoGroups, ErrNotFound, ErrInvalid, ErrNoSnapshots,
// ErrSnapshotAborted, ErrSnapshotBusy, group.ErrDuplicateMember, ctx's,
// snap's, or the log failing.
func (s *Service) JoinGroup(ctx context.Context, table, name, member, start string, snap GroupSnapshot) (*group.Session, error) {
	t, err := s.groupTable(table, name)
	if err != nil {
		return nil, err
	}
	if err := group.ValidateName("member", member); err != nil {
		return nil, invalid(err)
	}
	if strings.HasPrefix(name, SinkGroupPrefix) {
		return nil, invalid(fmt.Errorf("group %q: names starting with %q belong to webhook sinks (`wail sink ls %s`)",
			name, SinkGroupPrefix, table))
	}
	var latest group.StartLatest
	switch start {
	case "", "beginning":
	case "latest":
		latest = true
	case "snapshot":
		if s.snapshots.Source == nil {
			return nil, kindError{ErrNoSnapshots, errors.New(`this server's store cannot list keys: start "snapshot" is not available; use "beginning"`)}
		}
		if err := snap.Started(); err != nil {
			return nil, err
		}
		if err := s.snapshotGroup(ctx, t, name, member, snap); err != nil {
			return nil, err
		}
	default:
		return nil, invalid(fmt.Errorf(`invalid start %s: use "beginning", "latest" or "snapshot" (where a new group starts)`, quoted(start)))
	}
	return s.groups.Join(ctx, t, name, member, latest)
}

// AckSnapshotEnd is a member's acknowledgement of the end of the group
// snapshot it takes on this server (GroupSnapshot.End, which gave id).
// Errors: ErrNoGroups, ErrNotFound, ErrInvalid, group.ErrNotMember.
func (s *Service) AckSnapshotEnd(table, name, member string, id uint64) error {
	t, err := s.groupTable(table, name)
	if err != nil {
		return err
	}
	if err := group.ValidateName("member", member); err != nil {
		return invalid(err)
	}
	return s.groups.AckSnapshotEnd(t, name, member, id)
}

// CommittedSnapshot returns the id of the snapshot (GroupSnapshot.End's)
// whose end the group's positions were committed at, 0 when not known
// (group.Groups.CommittedSnapshot). Errors: ErrNoGroups, ErrNotFound,
// ErrInvalid, ctx's, or the log or store failing.
func (s *Service) CommittedSnapshot(ctx context.Context, table, name string) (uint64, error) {
	t, err := s.groupTable(table, name)
	if err != nil {
		return 0, err
	}
	return s.groups.CommittedSnapshot(ctx, t, name)
}

// AckGroup commits a member's acknowledgements durably; refused are the
// partitions whose acknowledgement was not taken, and why. Errors:
// ErrNoGroups, ErrNotFound, ErrInvalid, group.ErrNotMember,
// group.ErrInvalidAck, or the log failing.
func (s *Service) AckGroup(ctx context.Context, table, name, member string, acks []group.Ack) (refused map[int32]error, err error) {
	t, err := s.groupTable(table, name)
	if err != nil {
		return nil, err
	}
	if err := group.ValidateName("member", member); err != nil {
		return nil, invalid(err)
	}
	return s.groups.Ack(ctx, t, name, member, acks)
}

// ListGroups lists a table's consumer groups.
func (s *Service) ListGroups(ctx context.Context, table string) ([]string, error) {
	t, err := s.groupTable(table, "x")
	if err != nil {
		return nil, err
	}
	return s.groups.List(ctx, t)
}

// GroupDescription is a group's members and partitions, and the member
// taking its snapshot ("" none) with the events it sent: on this server,
// or in a group shared by processes on any (as the taker last wrote it
// in the group's entry).
type GroupDescription struct {
	Members        []string
	Partitions     []group.PartitionState
	SnapshotMember string
	SnapshotEvents int64
}

// DescribeGroup describes a group (ErrNotFound when the table has no such
// group: no positions and no snapshot under way).
func (s *Service) DescribeGroup(ctx context.Context, table, name string) (GroupDescription, error) {
	t, err := s.groupTable(table, name)
	if err != nil {
		return GroupDescription{}, err
	}
	members, parts, err := s.groups.Describe(ctx, t, name)
	if err != nil {
		return GroupDescription{}, err
	}
	snapMember, snapEvents, err := s.groups.SnapshotProgress(ctx, t, name)
	if err != nil {
		return GroupDescription{}, err
	}
	if parts == nil && snapMember == "" {
		return GroupDescription{}, notFound(fmt.Errorf("table %s has no group %q: `wail group ls %s` lists them", table, name, table))
	}
	return GroupDescription{Members: members, Partitions: parts, SnapshotMember: snapMember, SnapshotEvents: snapEvents}, nil
}

// ResetGroup moves a group without live members (else group.ErrMembers)
// to a start position (see ParseStart; not "snapshot", nor "": a reset
// says where to) and returns its partitions then.
func (s *Service) ResetGroup(ctx context.Context, table, name, to string) ([]group.PartitionState, error) {
	t, err := s.groupTable(table, name)
	if err != nil {
		return nil, err
	}
	if to == "" {
		// ParseStart's "latest": a request that lost its field would
		// move the group past every event it did not consume.
		return nil, invalid(errors.New(`a reset needs where to: "beginning", "latest", a cursor or a time`))
	}
	start, err := ParseStart(to)
	if err != nil {
		return nil, err
	}
	if start.Snapshot {
		return nil, invalid(errors.New(`a group cannot be reset to "snapshot"`))
	}
	id, err := s.topicID(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	offsets, after, gaps, err := s.startOffsets(ctx, t.Name, t.Partitions, s.createdOf(t.Name), TopicPrint(id), name, start, nil)
	if err != nil {
		return nil, err
	}
	if after > 0 {
		// A group has no version filter: its members would get the events
		// of version after or below that come later, which this start
		// skips (TestGroupResetRefusesAnAfterVersion; they were taken).
		return nil, invalid(fmt.Errorf("a group cannot be reset to a start that skips events of version %d or below "+
			"(\"v<version>\", or the cursor of a stream started at one): a group has no version filter, so its members "+
			"would get them; reset to a time, or to a cursor of a stream not started at a version", after))
	}
	commit := make(map[int32]int64, len(offsets))
	for p, o := range offsets {
		commit[int32(p)] = o
	}
	for _, g := range gaps {
		// Below the log's start, as asked: the members meet the gap and
		// are told (group.Message.Gap, counted under the group), as when
		// retention removes events after the reset; the log's start
		// committed instead skipped them unsaid
		// (TestGroupResetBelowRetention).
		commit[g.Partition] = g.From
	}
	reset := func(ctx context.Context) error { return s.groups.Reset(ctx, t, name, commit) }
	if sinkName, ok := strings.CutPrefix(name, SinkGroupPrefix); ok && s.sinkPaused != nil {
		// A sink is no member of its group (it holds its position
		// itself): its next commit would overwrite the reset, and
		// nothing would be delivered again.
		err = s.sinkPaused(ctx, table, sinkName, reset)
	} else {
		err = reset(ctx)
	}
	if err != nil {
		return nil, err
	}
	_, parts, err := s.groups.Describe(ctx, t, name)
	return parts, err
}

// snapshotGroup sends a start "snapshot" group's snapshot to member
// (deliver) when the group has no committed positions yet: one member at
// a time takes the whole snapshot (every partition; in a group shared by
// processes, one process at a time, under the group's snapshot claim:
// SnapshotGroup), and its end is committed as the group's positions only
// once all of it was sent; a member that stops half way (or whose process
// lost the claim) leaves the group without positions, and the next member
// takes the snapshot again. Members that wait for it then join from the
// committed positions.
func (s *Service) snapshotGroup(ctx context.Context, t group.Table, name, member string, snap GroupSnapshot) error {
	_, err := SnapshotGroup(ctx, s.Stream, s.groups, t, name, member, 0, func(_ context.Context, evs []*wailv1.StreamedEvent) error {
		return snap.Deliver(evs)
	}, snap.End)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, group.ErrSnapshotUnacked):
		return kindError{ErrSnapshotAborted, err}
	case errors.Is(err, group.ErrMembers):
		return kindError{ErrSnapshotAborted, fmt.Errorf(`group %q: a member joined from "beginning" or "latest" during the snapshot, whose end was not committed: consume again (start "snapshot" takes it again)`, name)}
	}
	return err
}
