package postgres

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestReplicaLagSeam: the lag of a replica is judged against the
// primary's flushed WAL position, not the replica's own received one: a
// replica cut off from its primary has replayed all it received (the
// old check said 0) while the primary wrote on.
func TestReplicaLagSeam(t *testing.T) {
	cases := []struct {
		name    string
		primary int64
		pos     replicaPos
		want    time.Duration
	}{
		{"not in recovery", 100, replicaPos{inRecovery: false, replayed: -1, age: -1}, 0},
		{"replayed what the primary flushed", 100, replicaPos{inRecovery: true, replayed: 100, age: 30}, 0},
		{"ahead of the primary's sample (it flushed since)", 100, replicaPos{inRecovery: true, replayed: 120, age: 30}, 0},
		{"disconnected: behind the primary, all received replayed", 200, replicaPos{inRecovery: true, replayed: 100, age: 42.5}, 42500 * time.Millisecond},
		{"behind, nothing replayed since it started", 200, replicaPos{inRecovery: true, replayed: 100, age: -1, sinceStart: 7}, 7 * time.Second},
		{"behind, a replay timestamp ahead of its clock", 200, replicaPos{inRecovery: true, replayed: 100, age: -0.5}, 0},
	}
	for _, c := range cases {
		if got := replicaLag(c.primary, c.pos); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestReplicaLagOfRealReplica reads the test replica's position as
// ReplicaLag does: caught up after a write, its lag is 0; with the
// primary's position past it (as for a replica cut off from its
// primary), the lag is the age of its last replayed transaction.
func TestReplicaLagOfRealReplica(t *testing.T) {
	s := caughtUp(t, 1)
	ctx := t.Context()
	pos, err := s.replicaPos(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !pos.inRecovery || pos.replayed <= 0 || pos.age < 0 {
		t.Fatalf("replica position %+v: want in recovery, a replay position and a replayed transaction", pos)
	}
	if lag := replicaLag(pos.replayed+1<<20, pos); lag <= 0 {
		t.Errorf("lag %s behind a primary 1 MiB of WAL ahead, want the age of its last replayed transaction (%.3fs)", lag, pos.age)
	}
}

// TestReplicaLagAfterIdlePrimary: the primary was idle for an hour, then
// wrote; the replica, a few milliseconds behind, is read before it
// replayed the write (the hook makes its first read so: its position
// just short of the primary's, its last replayed transaction an hour
// old). Before, ReplicaLag reported the hour the primary was idle; the
// replica replays the write at once, and its lag is what that took.
func TestReplicaLagAfterIdlePrimary(t *testing.T) {
	s := caughtUp(t, 1)
	ctx := t.Context()
	var reads atomic.Int32
	h := func(i int, p replicaPos) replicaPos {
		if reads.Add(1) == 1 { // behind the primary's flush, after an idle hour
			p.replayed, p.age = 0, time.Hour.Seconds()
		}
		return p
	}
	testHookReplicaPos.Store(&h)
	t.Cleanup(func() { testHookReplicaPos.Store(nil) })
	lags, err := s.ReplicaLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != 1 || lags[0] >= time.Minute {
		t.Fatalf("lags %v after an idle primary, want the replica's real lag (it replayed the primary's position on the next read), not the primary's idle hour", lags)
	}
}

// TestReplicaLagWatchesReplicasTogether: with two replicas, the first
// never catching up (watched the whole lagCatchUp) and the second
// replaying the primary's position right after its first read, the
// second's lag is what its own replay took. Watched one after the other,
// it was measured from before the first's watch: lagCatchUp too much, a
// healthy replica reported a second behind.
func TestReplicaLagWatchesReplicasTogether(t *testing.T) {
	s := caughtUp(t, 2)
	ctx := t.Context()
	var second atomic.Int32
	h := func(i int, p replicaPos) replicaPos {
		if i == 0 || second.Add(1) == 1 { // behind: 0 for ever, 1 at its first read only
			p.replayed, p.age = 0, 0.005
		}
		return p
	}
	testHookReplicaPos.Store(&h)
	t.Cleanup(func() { testHookReplicaPos.Store(nil) })
	lags, err := s.ReplicaLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != 2 || lags[0] < lagCatchUp || lags[1] >= lagCatchUp/2 {
		t.Fatalf("lags %v, want the first at least %s (never caught up) and the second what its replay took (one poll)", lags, lagCatchUp)
	}
}

// caughtUp opens a store whose replicas are the test replica n times,
// writes a row and waits until every replica lags 0 (replayed it).
func caughtUp(t *testing.T, n int) *Store {
	t.Helper()
	s := openFresh(t, true, func(o *Options) {
		for len(o.ReplicaDSNs) < n {
			o.ReplicaDSNs = append(o.ReplicaDSNs, o.ReplicaDSNs[0])
		}
	})
	ctx := t.Context()
	if err := s.CreateTable(ctx, "lag"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "lag", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lag 0 once the replicas replayed the write", func() bool {
		lags, err := s.ReplicaLag(ctx)
		return err == nil && len(lags) == n && !slices.ContainsFunc(lags, func(d time.Duration) bool { return d != 0 })
	})
	return s
}
