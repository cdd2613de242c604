package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/store"
)

func TestToolErr(t *testing.T) {
	t.Parallel()
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	wrap := func(err error) error { return fmt.Errorf("op: %w", err) }
	tests := []struct {
		ctx  context.Context
		err  error
		want connect.Code
	}{
		{live, wrap(dlq.ErrBadSelection), connect.CodeInvalidArgument},
		{live, wrap(store.ErrBadLimit), connect.CodeInvalidArgument},
		{live, wrap(dlq.ErrNotFound), connect.CodeNotFound},
		{live, wrap(store.ErrUnknownTable), connect.CodeNotFound},
		{live, wrap(intentlog.ErrUnknownTopic), connect.CodeNotFound}, // the table dropped while a reconcile ran
		{live, wrap(dlq.ErrExpired), connect.CodeFailedPrecondition},
		{live, wrap(dlq.ErrUnreadable), connect.CodeUnavailable},
		{live, wrap(reconcile.ErrNoScan), connect.CodeUnimplemented},
		{live, wrap(reconcile.ErrRecreated), connect.CodeAborted},
		{live, wrap(reconcile.ErrNotCaughtUp), connect.CodeUnavailable},
		{live, wrap(reconcile.ErrUnreadable), connect.CodeUnavailable},
		{live, wrap(fmt.Errorf("%w: %w", reconcile.ErrSlowLog, context.DeadlineExceeded)), connect.CodeUnavailable},
		{live, wrap(fmt.Errorf("%w: %w", store.ErrUnavailable, context.DeadlineExceeded)), connect.CodeUnavailable},
		{live, wrap(intentlog.ErrClosed), connect.CodeUnavailable},
		{live, errors.New("disk on fire"), connect.CodeUnavailable},
		{gone, wrap(context.Canceled), connect.CodeCanceled},
	}
	for _, tc := range tests {
		if got := connect.CodeOf(toolErr(tc.ctx, tc.err)); got != tc.want {
			t.Errorf("toolErr(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
