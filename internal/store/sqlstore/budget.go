package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Margins of Budget: what is kept back from the time left, so that the
// database's own timeout fires, and its answer (a definite failure) comes
// back, before the caller's deadline.
const (
	minMargin = 5 * time.Millisecond
	maxMargin = 250 * time.Millisecond
)

// Budget returns how long the database may work on a statement of a write
// that must be over by ctx's deadline: the time left less a margin (a
// tenth of it, within 5 ms and 250 ms) for the answer to come back. It
// fails, wrapping store.ErrNotApplied, when no more than the margin is
// left: such a statement must not be sent. Without a deadline it returns
// 0 (no bound).
//
// A SQL store tells the database to stop the statement after Budget (a
// statement timeout, a lock wait timeout), so the write cannot commit
// after ctx's deadline, give or take the delay before the statement
// starts at the server and the commit's own time.
func Budget(ctx context.Context, now time.Time) (time.Duration, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	left := deadline.Sub(now)
	margin := marginOf(left)
	if left <= margin {
		return 0, fmt.Errorf("%w: %s left before the deadline, too little to send the write", store.ErrNotApplied, left.Round(time.Millisecond))
	}
	return left - margin, nil
}

// marginOf is what Budget keeps back of left.
func marginOf(left time.Duration) time.Duration {
	return min(max(left/10, minMargin), maxMargin)
}

// SessionBound is the bound a SQL store sets on every statement of its
// sessions, for those that set none tighter of their own: a call's
// timeout (the store's query timeout) less Budget's margin, so that the
// database stops a statement, and says so, before the call gives up on
// it; the whole timeout when it is no more than the margin.
func SessionBound(timeout time.Duration) time.Duration {
	if m := marginOf(timeout); timeout > m {
		return timeout - m
	}
	return timeout
}
