package group

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// hangSwapper is a memSwapper whose calls, once hang is set, wait for
// their context (a store that takes requests and never answers).
type hangSwapper struct {
	memSwapper
	hang atomic.Bool
}

func (s *hangSwapper) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if s.hang.Load() {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	return s.memSwapper.SwapTable(ctx, name, old, new)
}

// TestSharedCloseBounded: a process with members in several shared groups
// shuts down while the store does not answer. Close leaves every group's
// entry at once, under one deadline of lease/4, not lease/4 per group one
// after the other: the server calls it (events.Close, sinks.Close) within
// its shutdown budget.
func TestSharedCloseBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 1)
	const lease = 2 * time.Second
	const groups = 6
	sw := &hangSwapper{memSwapper: memSwapper{c: &memCatalog{m: map[string][]byte{}}}}
	A := New(l, lease).Share(Sharing{Store: sw, Process: "A", Lease: lease, Logger: slog.New(slog.DiscardHandler)})
	for i := range groups {
		s, err := A.Join(ctx, tb, fmt.Sprintf("g%d", i), "m", false)
		if err != nil {
			t.Fatal(err)
		}
		o := owned{}
		until(t, s, o, nil, func() bool { return len(o) == 2 })
	}
	sw.hang.Store(true)
	start := time.Now()
	A.Close()
	took := time.Since(start)
	t.Logf("Close took %s with %d groups (lease/4 = %s)", took.Round(time.Millisecond), groups, lease/4)
	if took > 2*(lease/4) {
		t.Fatalf("Close took %s with %d shared groups and a store that does not answer: lease/4 (%s) per group, one after the other; "+
			"a shutdown must not grow with the number of groups", took.Round(time.Millisecond), groups, lease/4)
	}
}
