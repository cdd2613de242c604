package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// blockedReader is an intent reader that has nothing to read.
type blockedReader struct{ intentlog.Reader }

func (blockedReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStoppedPartitionZeroesLag: a partition that stops on this process
// (revoked to another resolver of the group, the table dropped, the
// process stopping) sets its lag gauges to 0, as it does its parked and
// oldest ones: the lag is its next owner's to report. It left
// wail_resolver_lag_intents at its last value, so that after a rebalance
// the former owner reported a lag for ever that no one resolves (and the
// console's and the dashboard's lag, summed over processes, counted it).
func TestStoppedPartitionZeroesLag(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{CommitInterval: time.Hour, DrainTimeout: time.Second}, nil)
	l.r.log, l.pub = &boundsLog{end: 10}, stubPublisher{}
	l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
	l.tick(context.Background())
	if got := testutil.ToFloat64(l.m.lag); got != 9 {
		t.Fatalf("lag %v before the stop, want 9", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.run(ctx, blockedReader{}, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	l.done = make(chan struct{}) // run closed it; testLoop's cleanup closes it too
	if lag, sec := testutil.ToFloat64(l.m.lag), testutil.ToFloat64(l.m.lagSeconds); lag != 0 || sec != 0 {
		t.Fatalf("after the partition stopped: wail_resolver_lag_intents %v, wail_resolver_lag_seconds %v, want 0 and 0", lag, sec)
	}
}
