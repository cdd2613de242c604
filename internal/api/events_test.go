package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
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
		{eventbus.ErrInvalid, connect.CodeInvalidArgument},
		{eventbus.ErrBadFrom, connect.CodeInvalidArgument},
		{eventbus.ErrBadCursor, connect.CodeInvalidArgument},
		{eventbus.ErrNoSnapshots, connect.CodeFailedPrecondition},
		{group.ErrNotMember, connect.CodeFailedPrecondition},
		{group.ErrMembers, connect.CodeFailedPrecondition},
		{eventbus.ErrNoGroups, connect.CodeUnimplemented},
		{eventbus.ErrSnapshotBusy, connect.CodeResourceExhausted},
		{group.ErrDuplicateMember, connect.CodeAlreadyExists},
		{group.ErrLeaseExpired, connect.CodeAborted},
		{eventbus.ErrSnapshotAborted, connect.CodeAborted},
		// a member joining during a group's snapshot is Aborted (retry at
		// once), not ErrMembers' FailedPrecondition
		{errors.Join(eventbus.ErrSnapshotAborted, group.ErrMembers), connect.CodeAborted},
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

func (openEvents) Stream(ctx context.Context, _ *wailv1.SubscribeRequest, started func() error, _ func(*wailv1.SubscribeResponse) error) error {
	if err := started(); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (openEvents) JoinGroup(context.Context, string, string, string, string) (*group.Session, error) {
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
