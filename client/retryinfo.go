package client

import (
	"errors"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// RetryDelay reports whether err is a refusal the server marked as one
// that clears by itself (a google.rpc.RetryInfo error detail), and the
// wait it suggests before trying again. A wail server marks so a stream
// refused for want of a slot (api.max_subscriptions,
// api.max_write_streams and their per-client limits: a stream that
// dropped is counted until the server sees it end), a call over its
// quota and a write to an overloaded table, all resource_exhausted. The
// other resource_exhausted errors come without it and fail again if
// tried again: a message over Options.MaxReceiveBytes, a group snapshot
// another member takes.
//
// A Consumer reconnecting and a Producer reopening its stream retry such
// refusals by themselves (waiting at least the suggested delay, at most
// Reconnect.MaxWait or RetryBackoffMax); for other calls, wait and call
// again.
func RetryDelay(err error) (time.Duration, bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return 0, false
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if ri, ok := v.(*errdetails.RetryInfo); derr == nil && ok {
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}
