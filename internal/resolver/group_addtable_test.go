package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
)

// TestTableArrivesAfterItsAssignment: a group may assign a partition of a
// table this member does not know yet (other members subscribed to it
// first); the partition waits, and starts when the table arrives.
func TestTableArrivesAfterItsAssignment(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "late")
	env.write(ctx, t, "k", 1, "one")
	g := &eagerGroup{offsets: map[int32]int64{}}
	join := func(topics []string, assigned, _ func(map[string][]int32)) (Group, error) {
		if len(topics) != 0 {
			t.Errorf("joined with topics %v, want none (no table yet)", topics)
		}
		assigned(map[string][]int32{intent.Topic("late"): {0}})
		return g, nil
	}
	r := New(env.log, env.st, env.bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100, Join: join})
	more := make(chan catalog.Table)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, nil, more) }()
	select {
	case more <- env.tb:
	case err := <-done:
		t.Fatalf("Run ended before the table arrived: %v", err)
	}
	waitUntil(ctx, t, "the partition assigned before its table resolved its intent", func() bool { return g.committed() == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
