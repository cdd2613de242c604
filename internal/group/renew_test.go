package group

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// expiringLog is a log that forgets a group's committed offset of a
// partition once it was not committed for ttl, as Kafka does for a group
// without Kafka members (KIP-211: offsets.retention.minutes after the
// partition's last commit), which wail's groups never have.
type expiringLog struct {
	intentlog.Log
	ttl time.Duration
	mu  sync.Mutex
	at  map[string]time.Time // by group/topic/partition: the last commit
}

func (l *expiringLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if err := l.Log.Commit(ctx, group, topic, offsets); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range offsets {
		l.at[fmt.Sprint(group, "/", topic, "/", p)] = time.Now()
	}
	return nil
}

func (l *expiringLog) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	c, err := l.Log.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range c {
		if time.Since(l.at[fmt.Sprint(group, "/", topic, "/", p)]) > l.ttl {
			delete(c, p) // expired
		}
	}
	return c, nil
}

// TestCommitRefreshKeepsQuietPositions: a member holds the partitions of
// a table that gets no events for longer than the log keeps a commit
// (Kafka's offsets.retention.minutes); its process commits their
// positions again meanwhile (WithCommitRefresh), through the committers
// its owner fenced, so that they are kept. The member leaves (its
// application is redeployed), events are written, a member joins from
// "latest": it gets them. Before, the positions had expired, the join
// found none and started at the end: the events written while the group
// had no member were skipped, silently.
func TestCommitRefreshKeepsQuietPositions(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const ttl = time.Second
			base := openLog(t)
			tb := table(t, base, 2, 5)
			st := &fenceState{epoch: map[string]int{}}
			exp := &expiringLog{Log: base, ttl: ttl, at: map[string]time.Time{}}
			_, share := memSharing()
			open := func(proc string) *Groups {
				g := New(&fencingLog{Log: exp, st: st}, time.Minute).WithCommitRefresh(ttl / 10)
				if shared {
					g.Share(share(proc))
				}
				t.Cleanup(g.Close)
				return g
			}
			ends := map[int32]int64{}
			for p := range tb.Partitions {
				_, end, err := base.Bounds(ctx, tb.Topic, p)
				if err != nil {
					t.Fatal(err)
				}
				ends[p] = end
			}
			A := open("A")
			a, err := A.Join(ctx, tb, "g", "a", true)
			if err != nil {
				t.Fatal(err)
			}
			oa := owned{}
			until(t, a, oa, nil, func() bool { return len(oa) == 2 })
			// The table is quiet for longer than a commit is kept.
			time.Sleep(3 * ttl)
			a.Leave()
			appendRecords(t, base, 20)
			B := open("B") // the application's process after a restart
			b, err := B.Join(ctx, tb, "g", "b", true)
			if err != nil {
				t.Fatal(err)
			}
			granted := grantedOffsets(ctx, t, b, 2)
			for p, o := range granted {
				if o != ends[p] {
					_, end, _ := base.Bounds(ctx, tb.Topic, p)
					t.Errorf("b's partition %d starts at %d, want %d (where a held it): the events to %d, written while the group "+
						"had no member, are skipped (the group's positions expired while a held them)", p, o, ends[p], end)
				}
			}
		})
	}
}

// countingLog counts the commits that reach the log.
type countingLog struct {
	intentlog.Log
	n atomic.Int32
}

func (l *countingLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	l.n.Add(int32(len(offsets)))
	return l.Log.Commit(ctx, group, topic, offsets)
}

// TestCommitRefreshNotAtEveryMove: a partition whose position this
// process committed (or committed again) lately is not committed again
// when it moves between members here (a new epoch): its last commit is
// at least that recent, whoever held it since. Before, every move made it
// due at once: on Kafka, unshared, a fence and a transaction per moved
// partition under the group's lock at each rebalance; shared, a
// transaction per partition claimed.
func TestCommitRefreshNotAtEveryMove(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			base := openLog(t)
			tb := table(t, base, 2, 0) // no events: nothing to acknowledge, nothing drains
			cl := &countingLog{Log: base}
			const every = 4 * time.Second // checked every 500ms
			G := New(&fencingLog{Log: cl, st: &fenceState{epoch: map[string]int{}}}, time.Minute).WithCommitRefresh(every)
			if shared {
				_, share := memSharing()
				G.Share(share("A"))
			}
			defer G.Close()
			a, err := G.Join(ctx, tb, "g", "a", false)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Leave()
			oa := owned{}
			until(t, a, oa, nil, func() bool { return len(oa) == 2 })
			// The first refresh: both positions, taken with no known commit time.
			for start := cl.n.Load(); cl.n.Load() < start+2; time.Sleep(5 * time.Millisecond) {
				if ctx.Err() != nil {
					t.Fatal("the held positions were not committed again")
				}
			}
			before := cl.n.Load()
			b, err := G.Join(ctx, tb, "g", "b", false)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Leave()
			ob := owned{}
			until(t, b, ob, nil, func() bool { return len(ob) == 1 })
			time.Sleep(1500 * time.Millisecond) // three checks, well within every of the first refresh
			if n := cl.n.Load() - before; n != 0 {
				t.Fatalf("%d commits after a partition moved to b, want none: committed again within %s of its last commit", n, every)
			}
		})
	}
}
