package api

import (
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Refusals that clear by themselves (a stream slot that frees when a
// stream ends, a quota that refills) carry a google.rpc.RetryInfo error
// detail with the wait the server suggests: the standard way for a
// client to tell them, by code and detail, from the resource_exhausted
// errors that retrying does not help (a message over the client's own
// bound, a group's snapshot taken by another member). The Go clients
// retry exactly those (client.RetryDelay).

// SlotRetryDelay is the wait a stream refused for want of a slot
// (api.max_subscriptions, api.max_write_streams and their per-client
// limits) is told: the server cannot know when a stream ends, and one
// that dropped (a client behind a load balancer that reconnects) is
// counted until the server sees it end.
const SlotRetryDelay = time.Second

// retryLater adds a RetryInfo detail suggesting delay to err and
// returns it.
func retryLater(err *connect.Error, delay time.Duration) *connect.Error {
	if d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); derr == nil {
		err.AddDetail(d)
	}
	return err
}
