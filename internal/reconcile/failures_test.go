package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// stuckAppend is a log whose appends never return until their context
// ends (a Kafka append whose broker does not answer).
type stuckAppend struct {
	*hookLog
	appends int
}

func (l *stuckAppend) Append(ctx context.Context, _ string, _ []*intentlog.Record) error {
	l.appends++
	<-ctx.Done()
	return ctx.Err()
}

// TestSlowAppend: the append of a batch's intents is bounded by a quarter
// of the dedupe horizon, whatever the caller's deadline (10 s here): an
// intent that lands later may find the resolver having forgotten events
// it relies on.
func TestSlowAppend(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.write("behind", 20, false)
	r.publish("behind", 15)
	o := r.opts()
	log := &stuckAppend{hookLog: r.log}
	o.Log, o.Horizon = log, 2*time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := Run(ctx, o, r.table, nil)
	if !errors.Is(err, ErrSlowLog) || !errors.Is(err, context.DeadlineExceeded) || log.appends != 1 {
		t.Fatalf("err = %v after %d appends, want ErrSlowLog after one", err, log.appends)
	}
}
