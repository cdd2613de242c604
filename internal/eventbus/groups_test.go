package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
)

// groupService is a Service with consumer groups on an embedded log
// whose table "t" has 2 partitions: v1 and v2 of key "k" published.
func groupService(t *testing.T) (*Service, *Bus) {
	t.Helper()
	log, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	bus := New(log)
	if err := bus.CreateTable(t.Context(), "t", 2, 0); err != nil {
		t.Fatal(err)
	}
	upserts(t, bus, 1, 2)
	svc := NewService(bus, func(table string) (int32, bool) { return 2, table == "t" }).WithGroups(group.New(log, time.Minute))
	t.Cleanup(svc.Close)
	return svc, bus
}

// TestGroupCallsRefused: what each group call answers to a request that
// cannot succeed, before the log is asked.
func TestGroupCallsRefused(t *testing.T) {
	t.Parallel()
	svc, bus := groupService(t)
	none := NewService(bus, func(string) (int32, bool) { return 2, true }) // no groups
	noSnap := GroupSnapshot{Started: func() error { t.Error("a refused join started"); return nil }}
	for _, tc := range []struct {
		name string
		call func(*Service) error
		want error
		msg  string
	}{
		{"no groups served", func(*Service) error {
			_, err := none.JoinGroup(t.Context(), "t", "g", "m", "", noSnap)
			return err
		}, ErrNoGroups, ""},
		{"unknown table", func(s *Service) error { _, err := s.ListGroups(t.Context(), "nope"); return err }, ErrNotFound, "wail table create nope"},
		{"bad group name", func(s *Service) error { _, err := s.DescribeGroup(t.Context(), "t", "a b"); return err }, ErrInvalid, `invalid group "a b"`},
		{"bad member name", func(s *Service) error {
			_, err := s.JoinGroup(t.Context(), "t", "g", "", "", noSnap)
			return err
		}, ErrInvalid, `invalid member ""`},
		{"a sink's group", func(s *Service) error {
			_, err := s.JoinGroup(t.Context(), "t", SinkGroupPrefix+"hook", "m", "", noSnap)
			return err
		}, ErrInvalid, "belong to webhook sinks"},
		{"bad start", func(s *Service) error {
			_, err := s.JoinGroup(t.Context(), "t", "g", "m", "yesterday", noSnap)
			return err
		}, ErrInvalid, `invalid start "yesterday"`},
		{"snapshot without a source", func(s *Service) error {
			_, err := s.JoinGroup(t.Context(), "t", "g", "m", "snapshot", noSnap)
			return err
		}, ErrNoSnapshots, "cannot list keys"},
		{"reset to snapshot", func(s *Service) error { _, err := s.ResetGroup(t.Context(), "t", "g", "snapshot"); return err }, ErrInvalid, "cannot be reset"},
		{"reset to a bad start", func(s *Service) error { _, err := s.ResetGroup(t.Context(), "t", "g", "@x"); return err }, ErrBadFrom, ""},
		// An empty position is Subscribe's "latest": a request that lost
		// its field moved the group past every unconsumed event.
		{"reset without a position", func(s *Service) error { _, err := s.ResetGroup(t.Context(), "t", "g", ""); return err }, ErrInvalid, "where to"},
		{"ack of an unknown table", func(s *Service) error { _, err := s.AckGroup(t.Context(), "nope", "g", "m", nil); return err }, ErrNotFound, ""},
		{"no such group", func(s *Service) error { _, err := s.DescribeGroup(t.Context(), "t", "g"); return err }, ErrNotFound, "`wail group ls t`"},
	} {
		err := tc.call(svc)
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if names, err := svc.ListGroups(t.Context(), "t"); err != nil || len(names) != 0 {
		t.Errorf("groups after refusals: %v, %v; want none", names, err)
	}
}

// TestGroupResetDescribe: a reset creates the group at the start asked
// (each partition's offset; a cursor's past the end at the end) and
// describes it; a member that joins is
// described as its partitions' owner, and its acknowledgement commits.
func TestGroupResetDescribe(t *testing.T) {
	t.Parallel()
	svc, _ := groupService(t)
	ctx := t.Context()
	p := int(intentlog.Partition([]byte("k"), 2))
	for _, tc := range []struct {
		to   string
		want [2]int64 // committed per partition
	}{
		{"beginning", [2]int64{0, 0}},
		{"latest", func() (w [2]int64) { w[p] = 2; return }()},
		// Past the ends (a cursor from before the log lost its tail, or
		// made up): each partition's end, where the events that take
		// those offsets again are delivered from; never past it, where
		// the group would skip them.
		{Cursor{Table: "t", Offsets: []int64{50, 50}}.String(), func() (w [2]int64) { w[p] = 2; return }()},
		{"@1", func() (w [2]int64) { w[p] = 1; return }()},
	} {
		parts, err := svc.ResetGroup(ctx, "t", "g", tc.to)
		if err != nil {
			t.Fatalf("reset to %s: %v", tc.to, err)
		}
		if len(parts) != 2 || parts[0].Committed != tc.want[0] || parts[1].Committed != tc.want[1] || parts[p].End != 2 {
			t.Errorf("reset to %s: partitions %+v, want committed %v", tc.to, parts, tc.want)
		}
		d, err := svc.DescribeGroup(ctx, "t", "g")
		if err != nil || len(d.Partitions) != 2 || d.Partitions[p].Committed != tc.want[p] || d.SnapshotMember != "" || len(d.Members) != 0 {
			t.Errorf("described after reset to %s: %+v, %v", tc.to, d, err)
		}
	}
	if names, err := svc.ListGroups(ctx, "t"); err != nil || len(names) != 1 || names[0] != "g" {
		t.Errorf("groups %v, %v; want [g]", names, err)
	}
	sess, err := svc.JoinGroup(ctx, "t", "g", "m1", "beginning", GroupSnapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Leave()
	d, err := svc.DescribeGroup(ctx, "t", "g")
	if err != nil || len(d.Members) != 1 || d.Members[0] != "m1" || d.Partitions[p].Owner != "m1" {
		t.Fatalf("described with a member: %+v, %v", d, err)
	}
	if _, err := svc.ResetGroup(ctx, "t", "g", "beginning"); !errors.Is(err, group.ErrMembers) {
		t.Errorf("reset with a member: %v, want group.ErrMembers", err)
	}
	var got group.Message // the events of partition p after the reset's offset 1: v2
	for got.Records == nil {
		if got, err = sess.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got.Partition != int32(p) || len(got.Records) != 1 || got.Next != 2 {
		t.Fatalf("delivered %+v, want partition %d's record at offset 1", got, p)
	}
	if !sess.Check(got) {
		t.Fatal("the member's own partition moved on")
	}
	refused, err := svc.AckGroup(ctx, "t", "g", "m1", []group.Ack{{Partition: int32(p), Epoch: got.Epoch, Next: got.Next}})
	if err != nil || len(refused) != 0 {
		t.Fatalf("ack: %v, %v", refused, err)
	}
	if d, err := svc.DescribeGroup(ctx, "t", "g"); err != nil || d.Partitions[p].Committed != 2 {
		t.Errorf("after the ack: %+v, %v; want partition %d committed at 2", d, err, p)
	}
}

// TestJoinGroupSnapshot: a member joining a new start "snapshot" group
// is told the request was taken (Started), gets the table's rows
// (Deliver) and joins from the snapshot's end, committed as the group's
// positions, described meanwhile as the snapshot's taker with the events
// it sent; a Started or Deliver that fails fails the join with its
// error, and a member that joins from "beginning" during the snapshot
// aborts it (ErrSnapshotAborted): neither joins nor commits positions.
func TestJoinGroupSnapshot(t *testing.T) {
	t.Parallel()
	broken := errors.New("broken")
	for _, tc := range []struct {
		name             string
		started, deliver error
		otherJoins       bool // a member joins from "beginning" as the rows are delivered
		want             error
		rows             int // delivered (one a batch)
	}{
		{name: "taken", rows: 2},
		{name: "started fails", started: broken, want: broken},
		{name: "deliver fails", deliver: broken, want: broken, rows: 1},
		{name: "another member joins", otherJoins: true, want: ErrSnapshotAborted, rows: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &memSource{levels: []string{"one"}, rows: map[string]store.Row{
				"a": {Version: 1, Value: []byte("A")}, "b": {Version: 2, Value: []byte("B")}}}
			svc, log := snapshotService(t, src, 0, nil, nil)
			svc.WithGroups(group.New(log, time.Minute))
			ctx := t.Context()
			rows := 0
			sess, err := svc.JoinGroup(ctx, "t", "g", "m1", "snapshot", GroupSnapshot{
				Started: func() error { return tc.started },
				Deliver: func(evs []*wailv1.StreamedEvent) error {
					// Described as under way, with the rows sent before.
					if d, err := svc.DescribeGroup(ctx, "t", "g"); err != nil || d.SnapshotMember != "m1" || d.SnapshotEvents != int64(rows) {
						t.Errorf("described during the snapshot after %d rows: %+v, %v; want m1 taking it, %d events sent", rows, d, err, rows)
					}
					rows += len(evs)
					if tc.otherJoins && rows == 1 {
						other, err := svc.JoinGroup(ctx, "t", "g", "m2", "beginning", GroupSnapshot{})
						if err != nil {
							return err
						}
						t.Cleanup(other.Leave)
					}
					return tc.deliver
				}})
			if sess != nil {
				defer sess.Leave()
			}
			if !errors.Is(err, tc.want) || (err == nil) != (sess != nil) || rows != tc.rows {
				t.Fatalf("joined %v, %v after %d rows; want %v after %d", sess != nil, err, rows, tc.want, tc.rows)
			}
			d, err := svc.DescribeGroup(ctx, "t", "g")
			switch {
			case tc.want == nil:
				if err != nil || len(d.Members) != 1 || d.Members[0] != "m1" || len(d.Partitions) != 2 {
					t.Errorf("described %+v, %v; want m1 in, with the snapshot's end as positions", d, err)
				}
			case tc.otherJoins:
				if err != nil || len(d.Members) != 1 || d.Members[0] != "m2" {
					t.Errorf("described %+v, %v; want m2 alone", d, err)
				}
			default:
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("described %+v, %v; want no group", d, err)
				}
			}
		})
	}
}

// TestServiceTableDropped: the drop of a table ends the members of its
// consumer groups (group.ErrTableDropped) whose table was created when
// the service says, not those of a table created again since; webhook
// sinks' groups are left to their manager. A service without groups has
// none to end.
func TestServiceTableDropped(t *testing.T) {
	t.Parallel()
	svc, bus := groupService(t)
	svc.WithTableCreated(func(string) int64 { return 1 })
	NewService(bus, func(string) (int32, bool) { return 2, true }).TableDropped("t", 1) // no groups
	ctx := t.Context()
	member, err := svc.JoinGroup(ctx, "t", "g", "m", "", GroupSnapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Leave()
	tb, err := svc.groupTable("t", SinkGroupPrefix+"hook")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := svc.groups.Join(ctx, tb, SinkGroupPrefix+"hook", "s", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Leave()
	ended := func(s *group.Session) bool {
		select {
		case <-s.Done():
			return true
		default:
			return false
		}
	}
	svc.TableDropped("t", 2) // a later creation's drop
	if ended(member) || ended(sink) {
		t.Fatalf("the drop of a table created after the members' ended them: %v, %v", member.Err(), sink.Err())
	}
	svc.TableDropped("t", 1)
	select {
	case <-member.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the member of the dropped table's group stayed in")
	}
	if !errors.Is(member.Err(), group.ErrTableDropped) {
		t.Errorf("the member ended with %v, want group.ErrTableDropped", member.Err())
	}
	if ended(sink) {
		t.Errorf("the drop ended the webhook sink's group: %v", sink.Err())
	}
}

// TestGroupResetOfASink: a reset of a webhook sink's group runs through
// the sinks' manager (WithSinks: the sink is no member, and would
// overwrite the reset with its next commit), which names the sink and
// may refuse it; other groups are reset directly.
func TestGroupResetOfASink(t *testing.T) {
	t.Parallel()
	svc, _ := groupService(t)
	ctx := t.Context()
	var paused []string
	refuse := false
	svc.WithSinks(func(ctx context.Context, table, name string, reset func(context.Context) error) error {
		paused = append(paused, table+"/"+name)
		if refuse {
			return fmt.Errorf("%w: sink %s runs", group.ErrMembers, name)
		}
		return reset(ctx)
	})
	if _, err := svc.ResetGroup(ctx, "t", "g", "beginning"); err != nil || len(paused) != 0 {
		t.Fatalf("reset of a member group: %v, through the sinks %v; want done directly", err, paused)
	}
	parts, err := svc.ResetGroup(ctx, "t", SinkGroupPrefix+"hook", "latest")
	if err != nil || len(paused) != 1 || paused[0] != "t/hook" || len(parts) != 2 {
		t.Fatalf("reset of sink hook's group: %v, %v, through the sinks %v; want done once sink t/hook was paused", parts, err, paused)
	}
	refuse = true
	if _, err := svc.ResetGroup(ctx, "t", SinkGroupPrefix+"other", "latest"); !errors.Is(err, group.ErrMembers) {
		t.Errorf("reset refused by the sinks: %v, want group.ErrMembers", err)
	}
	if _, err := svc.DescribeGroup(ctx, "t", SinkGroupPrefix+"other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused reset made the group: %v", err)
	}
}

// TestGroupResetDuringSnapshot: a reset while a member of this process
// takes the group's snapshot is refused with group.ErrMembers, as in a
// group shared by processes (docs/operations.md: "member M is taking the
// group's snapshot"), and the snapshot ends as taken. Before, an unshared
// group was reset under the taker, whose end was then refused: the
// member was told another member had joined (ErrSnapshotAborted).
func TestGroupResetDuringSnapshot(t *testing.T) {
	t.Parallel()
	src := &memSource{levels: []string{"one"}, rows: map[string]store.Row{
		"a": {Version: 1, Value: []byte("A")}, "b": {Version: 2, Value: []byte("B")}}}
	svc, log := snapshotService(t, src, 0, nil, nil)
	svc.WithGroups(group.New(log, time.Minute))
	ctx := t.Context()
	var resetErr error
	sess, err := svc.JoinGroup(ctx, "t", "g", "m1", "snapshot", GroupSnapshot{
		Started: func() error { return nil },
		Deliver: func([]*wailv1.StreamedEvent) error {
			if resetErr == nil {
				_, resetErr = svc.ResetGroup(ctx, "t", "g", "beginning")
				if resetErr == nil {
					resetErr = errors.New("done")
				}
			}
			return nil
		}})
	if sess != nil {
		defer sess.Leave()
	}
	if !errors.Is(resetErr, group.ErrMembers) || !strings.Contains(resetErr.Error(), "m1") {
		t.Errorf("reset during m1's snapshot: %v, want group.ErrMembers naming m1", resetErr)
	}
	if err != nil {
		t.Errorf("the snapshot with a reset refused meanwhile: %v, want taken", err)
	}
}

// TestGroupAckPastTheEnd: an acknowledgement whose next is past what the
// member was delivered (past the partition's end: a client's bug or a
// forged request) is refused for its partition, naming what was
// delivered, and commits nothing: committed, the group would skip the
// events appended below it. The member stays in the group, and its
// acknowledgement of what it was delivered commits.
func TestGroupAckPastTheEnd(t *testing.T) {
	t.Parallel()
	svc, _ := groupService(t)
	ctx := t.Context()
	p := intentlog.Partition([]byte("k"), 2)
	sess, err := svc.JoinGroup(ctx, "t", "g", "m1", "beginning", GroupSnapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Leave()
	var got group.Message
	for got.Records == nil {
		if got, err = sess.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got.Partition != p || got.Next != 2 || !sess.Check(got) { // (Check records the delivery, as the stream does)
		t.Fatalf("delivered %+v, want partition %d up to 2", got, p)
	}
	for _, next := range []int64{3, 1 << 40} {
		refused, err := svc.AckGroup(ctx, "t", "g", "m1", []group.Ack{{Partition: p, Epoch: got.Epoch, Next: next}})
		if err != nil || !errors.Is(refused[p], group.ErrBeyondDelivered) || !strings.Contains(refused[p].Error(), "delivered up to 2") {
			t.Fatalf("ack of next %d: refused %v, %v; want partition %d refused as past what was delivered (2)", next, refused, err, p)
		}
		if d, err := svc.DescribeGroup(ctx, "t", "g"); err != nil || d.Partitions[p].Committed > 0 || len(d.Members) != 1 {
			t.Fatalf("after the ack of next %d: %+v, %v; want nothing committed, the member in the group", next, d, err)
		}
	}
	if refused, err := svc.AckGroup(ctx, "t", "g", "m1", []group.Ack{{Partition: p, Epoch: got.Epoch, Next: got.Next}}); err != nil || len(refused) != 0 {
		t.Fatalf("ack of what was delivered: %v, %v", refused, err)
	}
	if d, err := svc.DescribeGroup(ctx, "t", "g"); err != nil || d.Partitions[p].Committed != 2 {
		t.Fatalf("after the ack: %+v, %v; want partition %d committed at 2", d, err, p)
	}
}
