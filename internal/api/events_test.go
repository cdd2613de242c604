package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/sink"
)

// TestEventCode: every condition of the event streams and groups gets its
// code, wrapped or not; an error with a code keeps it; anything else is
// the log failing (Unavailable: retry).
func TestEventCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{eventbus.ErrNotFound, connect.CodeNotFound},
		{group.ErrTableDropped, connect.CodeNotFound}, // a member's stream: not retried
		{eventbus.ErrInvalid, connect.CodeInvalidArgument},
		{eventbus.ErrBadFrom, connect.CodeInvalidArgument},
		{eventbus.ErrBadCursor, connect.CodeInvalidArgument},
		{eventbus.ErrNoSnapshots, connect.CodeFailedPrecondition},
		{group.ErrNotMember, connect.CodeFailedPrecondition},
		{group.ErrInvalidAck, connect.CodeInvalidArgument},
		{group.ErrMembers, connect.CodeFailedPrecondition},
		{group.ErrPositionLost, connect.CodeFailedPrecondition},
		{eventbus.ErrNoGroups, connect.CodeUnimplemented},
		{eventbus.ErrSnapshotBusy, connect.CodeResourceExhausted},
		{eventbus.ErrRetentionGap, connect.CodeOutOfRange},
		{group.ErrDuplicateMember, connect.CodeAlreadyExists},
		{group.ErrLeaseExpired, connect.CodeAborted},
		{eventbus.ErrSnapshotAborted, connect.CodeAborted},
		// a member joining during a group's snapshot is Aborted (retry at
		// once), not ErrMembers' FailedPrecondition
		{errors.Join(eventbus.ErrSnapshotAborted, group.ErrMembers), connect.CodeAborted},
		// a reset of a sink's group that waited out a Sync: retry
		{fmt.Errorf("%w: ... (%w)", sink.ErrSyncBusy, context.DeadlineExceeded), connect.CodeUnavailable},
		{errors.New("broker gone"), connect.CodeUnavailable},
		{connect.NewError(connect.CodeCanceled, errors.New("client went away")), connect.CodeCanceled},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("table t: %w", tc.err)} {
			got := eventError(err)
			if connect.CodeOf(got) != tc.code || got.Error() == "" {
				t.Errorf("%v: %v, want %v", err, got, tc.code)
			}
		}
	}
	if eventError(nil) != nil {
		t.Fatal("nil got an error")
	}
}

// openEvents is Events whose streams send their start and then stay open
// until the request ends; it has no consumer groups.
type openEvents struct{ Events }

func (openEvents) Subscribe(ctx context.Context, _ *wailv1.SubscribeRequest, _ bool, started func(string) error, _ func(*wailv1.SubscribeResponse) error) error {
	if err := started(""); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (openEvents) JoinGroup(context.Context, string, string, string, string, eventbus.GroupSnapshot) (*group.Session, error) {
	return nil, eventbus.ErrNoGroups
}

// TestEventStreamSlots: Subscribe and Consume streams count against the
// same limits (api.max_subscriptions): past them a stream is refused
// ResourceExhausted naming the limit before the bus is asked, and a
// closed stream frees its slot; a bus error gets its code.
func TestEventStreamSlots(t *testing.T) {
	t.Parallel()
	svc := NewEventService(openEvents{}).WithLimits(SlotLimits{MaxStreams: 1})
	path, h := wailv1connect.NewEventServiceHandler(svc)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer svc.Close()
	c := wailv1connect.NewEventServiceClient(srv.Client(), srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := c.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"}))
	if err != nil {
		t.Fatal(err)
	}
	consume := func() error {
		s, err := c.Consume(t.Context(), connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m"}))
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	}
	waitFor(t, func() bool { return svc.Open() == 1 })
	if err := consume(); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "api.max_subscriptions") {
		t.Fatalf("a Consume stream past the limit: %v", err)
	}
	cancel()
	sub.Close()
	waitFor(t, func() bool { return svc.Open() == 0 })
	if err := consume(); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Fatalf("Consume once the slot was freed: %v, want the bus's answer (unimplemented: no groups)", err)
	}
}

// shownEvents is Events whose answers are set by the test: a stream that
// starts at start and sends one message, a start "snapshot" member that
// gets snap and is then aborted, a group described as described.
type shownEvents struct {
	Events
	start     string
	snap      []*wailv1.StreamedEvent
	described eventbus.GroupDescription
}

func (e shownEvents) Subscribe(_ context.Context, _ *wailv1.SubscribeRequest, _ bool, started func(string) error, send func(*wailv1.SubscribeResponse) error) error {
	if err := started(e.start); err != nil {
		return err
	}
	return send(&wailv1.SubscribeResponse{Cursor: "next"})
}

func (e shownEvents) JoinGroup(_ context.Context, _, _, _, start string, snap eventbus.GroupSnapshot) (*group.Session, error) {
	if start != "snapshot" {
		return nil, fmt.Errorf("start %q: %w", start, eventbus.ErrInvalid)
	}
	if err := snap.Started(); err != nil {
		return nil, err
	}
	if err := snap.Deliver(e.snap); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("group g: %w", eventbus.ErrSnapshotAborted)
}

func (e shownEvents) DescribeGroup(context.Context, string, string) (eventbus.GroupDescription, error) {
	return e.described, nil
}

// TestEventResponses: what the bus answers reaches the client whole: a
// stream's start in the Wail-Start-Cursor header (none for a snapshot),
// a group's snapshot rows marked snapshot before the member's end
// (Aborted when a member joined meanwhile), and DescribeGroup's snapshot
// member and progress.
func TestEventResponses(t *testing.T) {
	t.Parallel()
	serve := func(e Events) wailv1connect.EventServiceClient {
		svc := NewEventService(e)
		path, h := wailv1connect.NewEventServiceHandler(svc)
		mux := http.NewServeMux()
		mux.Handle(path, h)
		srv := httptest.NewServer(mux)
		t.Cleanup(func() { svc.Close(); srv.Close() })
		return wailv1connect.NewEventServiceClient(srv.Client(), srv.URL)
	}
	for _, start := range []string{"t:AQI", ""} {
		c := serve(shownEvents{start: start})
		s, err := c.Subscribe(t.Context(), connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"}))
		if err != nil {
			t.Fatal(err)
		}
		if !s.Receive() || s.Msg().Cursor != "next" {
			t.Fatalf("start %q: no message: %v", start, s.Err())
		}
		want := []string{start}
		if start == "" {
			want = nil // a snapshot's start does not resume it
		}
		if got := s.ResponseHeader().Values(StartCursorHeader); !slices.Equal(got, want) {
			t.Errorf("start %q: header %q, want %q", start, got, want)
		}
		s.Close()
	}

	rows := []*wailv1.StreamedEvent{
		{Event: &wailv1.ChangeEvent{Key: []byte("a"), Version: 3}, Partition: 1, Offset: 7},
		{Event: &wailv1.ChangeEvent{Key: []byte("b"), Version: 4}, Partition: 0, Offset: 2},
	}
	c := serve(shownEvents{snap: rows, described: eventbus.GroupDescription{Members: []string{"m2"}, SnapshotMember: "m1", SnapshotEvents: 41,
		Partitions: []group.PartitionState{{Partition: 0, Committed: 5, End: 9, Owner: "m2", Epoch: 3}}}})
	s, err := c.Consume(t.Context(), connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m1", Start: "snapshot"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []*wailv1.ConsumeResponse
	for s.Receive() {
		got = append(got, s.Msg())
	}
	if connect.CodeOf(s.Err()) != connect.CodeAborted {
		t.Errorf("a member joined during the snapshot: %v, want aborted", s.Err())
	}
	if len(got) != len(rows) {
		t.Fatalf("%d snapshot rows, want %d", len(got), len(rows))
	}
	for i, m := range got {
		if !m.Snapshot || string(m.Event.Key) != string(rows[i].Event.Key) || m.Event.Version != rows[i].Event.Version ||
			m.Partition != rows[i].Partition || m.Offset != rows[i].Offset || m.Epoch != 0 || m.Next != 0 {
			t.Errorf("snapshot row %d: %v, want %v marked snapshot", i, m, rows[i])
		}
	}
	s.Close()

	d, err := c.DescribeGroup(t.Context(), connect.NewRequest(&wailv1.DescribeGroupRequest{Table: "t", Group: "g"}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Msg.SnapshotMember != "m1" || d.Msg.SnapshotEvents != 41 || len(d.Msg.Members) != 1 || len(d.Msg.Partitions) != 1 ||
		d.Msg.Partitions[0].Lag != 4 || d.Msg.Partitions[0].Owner != "m2" || d.Msg.Partitions[0].Epoch != 3 {
		t.Errorf("described %v", d.Msg)
	}
}

// TestGroupMessageResponses: what a member's stream gets of each group
// message: grants and revocations in one response (either alone too); a
// batch's events with their partition, offset and epoch, each with the
// position after it as Next, the last with the batch's Next (which passes
// the records after it the session did not hand on, such as a delete's
// tombstone, so that acknowledging it leaves no lag); a record that is
// not an event skipped; nothing once the partition moved on; a failed
// send ends the batch with its error.
func TestGroupMessageResponses(t *testing.T) {
	t.Parallel()
	event := func(off int64, key string, v uint64) intentlog.Record {
		rec, err := eventbus.Encode(&intent.Event{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: v, Value: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		rec.Offset = off
		return *rec
	}
	notEvent := intentlog.Record{Offset: 6, Key: []byte("x"), Value: []byte{0x0a, 0xff}} // claims a ChangeEvent, is not one
	type sent struct {
		key       string
		version   uint64
		off, next int64
		part      int32
		epoch     uint64
		granted   []string // partition/epoch@offset
		revoked   []int32
		gap       string
	}
	for _, tc := range []struct {
		name  string
		msg   group.Message
		moved bool
		want  []sent
	}{
		{name: "grants and revocations", msg: group.Message{Granted: []group.Grant{{Partition: 1, Epoch: 2, Offset: 3}, {Partition: 4, Epoch: 2, Offset: -1}}, Revoked: []int32{0}},
			want: []sent{{granted: []string{"1/2@3", "4/2@-1"}, revoked: []int32{0}}}},
		{name: "a revocation alone", msg: group.Message{Revoked: []int32{5}}, want: []sent{{revoked: []int32{5}}}},
		{name: "a grant alone", msg: group.Message{Granted: []group.Grant{{Partition: 2, Epoch: 1}}},
			want: []sent{{granted: []string{"2/1@0"}}}},
		{name: "a batch: the last event carries the batch's next", msg: group.Message{Partition: 3, Epoch: 9, Next: 9,
			Records: []intentlog.Record{event(4, "a", 10), event(5, "b", 11), event(7, "c", 12)}},
			want: []sent{{key: "a", version: 10, off: 4, next: 5, part: 3, epoch: 9}, {key: "b", version: 11, off: 5, next: 6, part: 3, epoch: 9},
				{key: "c", version: 12, off: 7, next: 9, part: 3, epoch: 9}}},
		{name: "a record that is not an event is skipped", msg: group.Message{Partition: 1, Epoch: 2, Next: 8,
			Records: []intentlog.Record{notEvent, event(7, "a", 3)}},
			want: []sent{{key: "a", version: 3, off: 7, next: 8, part: 1, epoch: 2}}},
		{name: "the partition moved on", moved: true, msg: group.Message{Partition: 1, Epoch: 2, Next: 8, Records: []intentlog.Record{event(7, "a", 3)}}},
		{name: "a retention gap: told, with next past it", msg: group.Message{Partition: 2, Epoch: 4, Next: 15, Gap: &group.Gap{From: 10, To: 15}},
			want: []sent{{next: 15, part: 2, epoch: 4, gap: "2:[10,15)"}}},
		{name: "a retention gap of a partition that moved on", moved: true, msg: group.Message{Partition: 2, Epoch: 4, Next: 15, Gap: &group.Gap{From: 10, To: 15}}},
	} {
		var got []sent
		err := sendGroupMessage(func(r *wailv1.ConsumeResponse) error {
			s := sent{off: r.Offset, next: r.Next, part: r.Partition, epoch: r.Epoch, revoked: r.Revoked}
			if r.Event != nil {
				s.key, s.version = string(r.Event.Key), r.Event.Version
			}
			for _, g := range r.Granted {
				s.granted = append(s.granted, fmt.Sprintf("%d/%d@%d", g.Partition, g.Epoch, g.Offset))
			}
			if g := r.Gap; g != nil {
				s.gap = fmt.Sprintf("%d:[%d,%d)", g.Partition, g.From, g.To)
			}
			got = append(got, s)
			return nil
		}, tc.msg, func(m group.Message) bool {
			if m.Partition != tc.msg.Partition || m.Epoch != tc.msg.Epoch {
				t.Errorf("%s: checked %v", tc.name, m)
			}
			return !tc.moved
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: sent\n%v, want\n%v", tc.name, got, tc.want)
		}
	}
	// A failed send ends the batch: nothing after it is sent.
	gone := errors.New("client gone")
	sends := 0
	err := sendGroupMessage(func(*wailv1.ConsumeResponse) error { sends++; return gone },
		group.Message{Next: 3, Records: []intentlog.Record{event(1, "a", 1), event(2, "b", 2)}}, func(group.Message) bool { return true })
	if !errors.Is(err, gone) || sends != 1 {
		t.Fatalf("a failed send: %v after %d sends, want %v after 1", err, sends, gone)
	}
}
