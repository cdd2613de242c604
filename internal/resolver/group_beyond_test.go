package resolver

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// TestAssignedPartitionBeyondTable: the group assigns the partitions the
// intent topic has, which include those added behind wail's back (Kafka:
// kafka-topics.sh --alter --partitions). One at or past the table's count
// is not the table's: nothing is written there. Its start failed with "no
// partition", logged as an error and tried again every 30 s at most, for
// ever. Now it is left alone, said once with a warning pointing at the
// partitions/<table> condition, and the table's partition resolves.
func TestAssignedPartitionBeyondTable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "grown")
	env.write(ctx, t, "k", 1, "one")
	g := &eagerGroup{offsets: map[int32]int64{}}
	join := func(_ []string, assigned, _ func(map[string][]int32)) (Group, error) {
		assigned(map[string][]int32{intent.Topic("grown"): {0, 1, 2}})
		return g, nil
	}
	var logs logbuf.Buffer
	r := New(env.log, env.st, env.bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100, Join: join,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{env.tb}, nil) }()
	waitUntil(ctx, t, "the table's partition resolved its intent", func() bool { return g.committed() == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("errors logged about partitions the table does not have:\n%s", out)
	}
	for _, p := range []string{"partition=1 ", "partition=2 "} {
		if n := strings.Count(out, p); n != 1 || !strings.Contains(out, "partitions/grown") {
			t.Errorf("%d lines with %s, want 1 pointing at partitions/grown:\n%s", n, p, out)
		}
	}
}

// fencedGroup fails every transaction as a member that was replaced: the
// membership ends and the resolver joins again.
type fencedGroup struct{}

func (fencedGroup) AddTopics(...string)         {}
func (fencedGroup) Close(context.Context) error { return nil }
func (fencedGroup) Shards() int                 { return 1 }
func (fencedGroup) Transact(context.Context, int, map[string][]*intentlog.Record, map[string]map[int32]int64) error {
	return ErrFenced
}

// TestBeyondTableSaidOnceAcrossJoins: a partition added behind wail's back
// was said once per membership, not once: every join after a member was
// fenced (or failed) warned again about the same partitions, although
// nothing changed and the operator had been told. It is said once per
// process now.
func TestBeyondTableSaidOnceAcrossJoins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "grownagain")
	env.write(ctx, t, "k", 1, "one")
	g := &eagerGroup{offsets: map[int32]int64{}}
	var joins atomic.Int32
	join := func(_ []string, assigned, _ func(map[string][]int32)) (Group, error) {
		assigned(map[string][]int32{intent.Topic("grownagain"): {0, 1, 2}})
		if joins.Add(1) <= 2 { // fenced at its first transaction: joins again
			return fencedGroup{}, nil
		}
		return g, nil
	}
	var logs logbuf.Buffer
	r := New(env.log, env.st, env.bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100, Join: join,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{env.tb}, nil) }()
	waitUntil(ctx, t, "the table's partition resolved its intent after joining again", func() bool { return g.committed() == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := joins.Load(); n < 3 {
		t.Fatalf("%d joins, want 3", n)
	}
	out := logs.String()
	for _, p := range []string{"partition=1 ", "partition=2 "} {
		if n := strings.Count(out, "level=WARN"+" msg=\"resolver: the group assigned an intent partition the table does not have"); n != 2 {
			t.Errorf("%d warnings about partitions beyond the table over 3 joins, want 2 (one per partition):\n%s", n, out)
			break
		}
		if n := strings.Count(out, p+"table_partitions"); n != 1 {
			t.Errorf("%d warnings with %s over 3 joins, want 1:\n%s", n, p, out)
		}
	}
}
