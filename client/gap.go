package client

import (
	"errors"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// ErrRetentionGap: retention (the server's log.event_retention) removed
// events a subscription with FailOnGap was to deliver; the error is a
// *GapError, which says which. Start again from "beginning" (what is
// left) or "snapshot", or without FailOnGap to skip them.
var ErrRetentionGap = errors.New("events removed by retention")

// GapError is the server's out_of_range refusal of a FailOnGap
// subscription, with the partition and offsets removed (Gap).
type GapError struct {
	Gap *wailv1.RetentionGap
	err error // the server's
}

// Error is the server's message, which names the partition and offsets.
func (e *GapError) Error() string { return e.err.Error() }

// Unwrap returns ErrRetentionGap and the server's error (a *connect.Error).
func (e *GapError) Unwrap() []error { return []error{ErrRetentionGap, e.err} }

// gapError is err as a *GapError when it is the server's out_of_range
// with a RetentionGap detail, else err.
func gapError(err error) error {
	ce := new(connect.Error)
	if !errors.As(err, &ce) || ce.Code() != connect.CodeOutOfRange {
		return err
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if gap, ok := v.(*wailv1.RetentionGap); ok {
				return &GapError{Gap: gap, err: err}
			}
		}
	}
	return err
}
