package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestReplicaWaitReadsAfterTheWrite: with the wait on, a replica read
// asked right after a write acknowledged returns that write (the replica
// is known to have replayed the primary's position of when the read was
// asked), every time; without it some reads may be stale (not asserted:
// timing). With replay paused, a read waits ReplicaWait, then reads the
// replica anyway and is counted stale.
func TestReplicaWaitReadsAfterTheWrite(t *testing.T) {
	s := openFresh(t, true, func(o *Options) { o.ReplicaWait = 30 * time.Second })
	ctx := t.Context()
	if err := s.CreateTable(ctx, "fw"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to have the table", func() bool {
		_, err := s.GetMany(ctx, "fw", [][]byte{[]byte("x")}, 0)
		return err == nil
	})
	const n = 50
	for i := range n {
		key := []byte(fmt.Sprintf("k%d", i%5))
		v := uint64(i + 1)
		if _, err := s.Apply(ctx, "fw", []store.Mutation{{Key: key, Value: []byte("v"), Version: v}}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if got := versionAt(t, s, "fw", string(key), 0); got != v {
				t.Fatalf("write %d: the replica read right after it found version %d, want %d", i, got, v)
			}
		} else {
			rows, err := s.GetMany(ctx, "fw", [][]byte{key}, 0)
			if err != nil || rows[0].Row.Version != v {
				t.Fatalf("write %d: GetMany at the replica right after it: %+v, %v; want version %d", i, rows, err, v)
			}
		}
	}
	waited, stale := s.ReplicaWaits()
	t.Logf("%d reads after writes: %d waited for the replica, %d gave up", n, waited, stale)
	if stale != 0 {
		t.Errorf("%d reads gave up waiting on a replica that replays", stale)
	}

	// Paused replay: the wait runs out; the read still goes to the replica.
	s2 := openFresh(t, true, func(o *Options) { o.ReplicaWait = 200 * time.Millisecond })
	if err := s2.CreateTable(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Apply(ctx, "fp", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to see version 1", func() bool { return versionAt(t, s2, "fp", "k", 0) == 1 })
	rdsn := replicaDSN(t)
	exec(t, rdsn, "SELECT pg_wal_replay_pause()")
	t.Cleanup(func() { exec(t, rdsn, "SELECT pg_wal_replay_resume()") })
	eventually(t, "replay to pause", func() bool {
		return queryString(t, rdsn, "SELECT pg_get_wal_replay_pause_state()") == "paused"
	})
	if _, err := s2.Apply(ctx, "fp", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 2}}); err != nil {
		t.Fatal(err)
	}
	_, stale0 := s2.ReplicaWaits()
	start := time.Now()
	got := versionAt(t, s2, "fp", "k", 0)
	took := time.Since(start)
	_, stale1 := s2.ReplicaWaits()
	if got != 1 || stale1 != stale0+1 || took < 200*time.Millisecond {
		t.Fatalf("paused replica: version %d after %s, stale reads %d -> %d; want version 1 (the replica's) after waiting 200ms, counted stale", got, took, stale0, stale1)
	}
}

// BenchmarkReplicaReadAfterWrite: a write, then a read of its key at the
// replica, as the resolver does; reports the share of reads that found
// the replica stale (the resolver would escalate them to the primary),
// with and without the replica wait.
func BenchmarkReplicaReadAfterWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{{"wait=off", -1}, {"wait=50ms", DefaultReplicaWait}} {
		b.Run(tc.name, func(b *testing.B) {
			s := openFresh(b, true, func(o *Options) { o.ReplicaWait = tc.wait })
			ctx := b.Context()
			if err := s.CreateTable(ctx, "rb"); err != nil {
				b.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := s.GetMany(ctx, "rb", [][]byte{[]byte("x")}, 0); err == nil || time.Now().After(deadline) {
					break
				}
			}
			stale := 0
			b.ResetTimer()
			for i := range b.N {
				key := []byte(fmt.Sprintf("k%d", i%100))
				v := uint64(i + 1)
				if _, err := s.Apply(ctx, "rb", []store.Mutation{{Key: key, Value: []byte("v"), Version: v}}); err != nil {
					b.Fatal(err)
				}
				row, _, err := s.Get(ctx, "rb", key, 0)
				if err != nil {
					b.Fatal(err)
				}
				if row.Version < v {
					stale++
				}
			}
			b.ReportMetric(100*float64(stale)/float64(b.N), "%stale")
		})
	}
}

// TestReplicaWaitNotInRecovery: a replica level served by a server that
// is not in recovery (a promoted replica, or the primary named as one)
// has nothing to replay: it covers every read at once, and a read there
// does not wait ReplicaWait.
func TestReplicaWaitNotInRecovery(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false, func(o *Options) {
		o.ReplicaDSNs = []string{o.DSN}
		o.ReplicaWait = 5 * time.Second
	})
	ctx := t.Context()
	if err := s.CreateTable(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Apply(ctx, "fn", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: uint64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if got := versionAt(t, s, "fn", "k", 0); got != uint64(i+1) {
			t.Fatalf("read %d at the replica level: version %d, want %d", i, got, i+1)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("read %d at a replica level not in recovery took %s: it waited for a replay that never comes", i, took)
		}
	}
	if _, stale := s.ReplicaWaits(); stale != 0 {
		t.Errorf("%d reads gave up waiting on a server not in recovery", stale)
	}
}
