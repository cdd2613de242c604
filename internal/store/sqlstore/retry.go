package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Retry is how a SQL store runs a write that can lose a lock race (a
// deadlock, a lock wait timeout): again, up to Attempts runs in all,
// waiting attempt milliseconds after the attempt-th.
type Retry struct {
	// Attempts bounds the runs of one write.
	Attempts int
	// Retryable reports a lost lock race: the write can simply run again
	// (Apply is idempotent: last writer wins on the version).
	Retryable func(error) bool
	// Retried, when set, is told of each failed run that will run again.
	Retried func(attempt int, err error)
}

// Run runs write until it returns nil or an error Retryable rejects, or
// has run Attempts times. It returns nil, write's last error passed
// through fail (the store's classification), or ctx's error when ctx ends
// during a wait: then the last run lost its race, nothing is in flight,
// and the error wraps store.ErrNotApplied.
func (r Retry) Run(ctx context.Context, write func() error, fail func(error) error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		switch {
		case err == nil:
			return nil
		case !r.Retryable(err) || attempt >= r.Attempts:
			return fail(err)
		}
		if r.Retried != nil {
			r.Retried(attempt, err)
		}
		if serr := Sleep(ctx, time.Duration(attempt)*time.Millisecond); serr != nil {
			return fmt.Errorf("%w: %w (after %d runs that lost lock races, the last: %v)", store.ErrNotApplied, serr, attempt, err)
		}
	}
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
