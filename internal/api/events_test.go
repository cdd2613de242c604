package api

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

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
