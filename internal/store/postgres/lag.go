package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// ReplicaLag returns, per replica in level order, how far its visible state
// trails the primary (wail doctor): 0 when it has replayed the WAL the
// primary had flushed when asked (pg_current_wal_flush_lsn(), read
// first), or is not in recovery. A replica behind that is watched (read
// every lagPoll, up to lagCatchUp): its lag is the time it took to replay
// that WAL, from when the primary was asked. Before, it was the age of
// the last transaction it replayed, which right after a primary idle for
// long was that idle time for a replica a few milliseconds behind (its
// last replayed transaction is that old, TestReplicaLagAfterIdlePrimary).
// One that does not catch up within lagCatchUp reports that age (now() -
// pg_last_xact_replay_timestamp(), on the replica; the time since it
// started when it replayed none), at least the time watched: an upper
// bound, as the first transaction it lacks is younger. A replica cut off
// from its primary has replayed all it received: compared with its own
// received position, as before, it reported 0 however far the primary
// had gone.
func (s *Store) ReplicaLag(ctx context.Context) ([]time.Duration, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("postgres: replica lag: %w", store.ErrClosed)
	}
	if len(s.replicas) == 0 {
		return []time.Duration{}, nil
	}
	asked := time.Now()
	qctx, cancel := s.withTimeout(ctx)
	var primary int64
	err := s.primary.QueryRow(qctx, primaryLSNSQL).Scan(&primary)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("postgres: replica lag: the primary's WAL position: %w", s.classify(ctx, err))
	}
	// Watched together: each replica's lag counts from asked, so one
	// watched after another's whole catch-up wait would lag that much more.
	lags := make([]time.Duration, len(s.replicas))
	errs := make([]error, len(s.replicas))
	var wg sync.WaitGroup
	for i := range s.replicas {
		wg.Go(func() { lags[i], errs[i] = s.lagOf(ctx, i, primary, asked) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("postgres: replica lag %s: %w", s.levels[i], s.classify(ctx, err))
		}
	}
	return lags, nil
}

// How long ReplicaLag watches a replica behind the primary's position
// catch up, and how often it reads it meanwhile.
const (
	lagCatchUp = time.Second
	lagPoll    = 10 * time.Millisecond
)

// lagOf returns replica i's lag behind primary, the primary's flushed WAL
// position asked at asked (see ReplicaLag).
func (s *Store) lagOf(ctx context.Context, i int, primary int64, asked time.Time) (time.Duration, error) {
	until := time.Now().Add(lagCatchUp)
	for n := 0; ; n++ {
		pos, err := s.replicaPos(ctx, i)
		if err != nil {
			return 0, err
		}
		caught := !pos.inRecovery || pos.replayed >= primary
		switch {
		case caught && n == 0: // replayed it when first read
			return 0, nil
		case caught: // meanwhile
			return time.Since(asked), nil
		case !time.Now().Before(until):
			return max(replicaLag(primary, pos), time.Since(asked)), nil
		}
		select {
		case <-ctx.Done():
			return max(replicaLag(primary, pos), time.Since(asked)), nil
		case <-time.After(lagPoll):
		}
	}
}

// replicaPos is what a replica says of its replay (replicaPosSQL).
type replicaPos struct {
	inRecovery bool
	replayed   int64   // pg_last_wal_replay_lsn() as a number; -1: none
	age        float64 // seconds since pg_last_xact_replay_timestamp(); -1: none replayed
	sinceStart float64 // seconds since the server started
}

const replicaPosSQL = `SELECT pg_is_in_recovery(),
  coalesce((pg_last_wal_replay_lsn() - '0/0')::bigint, -1),
  coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, -1),
  extract(epoch FROM now() - pg_postmaster_start_time())::float8`

// testHookReplicaPos, if set, rewrites what replicaPos read (tests).
var testHookReplicaPos atomic.Pointer[func(i int, p replicaPos) replicaPos]

// replicaPos reads replica i's replay position.
func (s *Store) replicaPos(ctx context.Context, i int) (replicaPos, error) {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var p replicaPos
	err := s.replicas[i].QueryRow(qctx, replicaPosSQL).Scan(&p.inRecovery, &p.replayed, &p.age, &p.sinceStart)
	if h := testHookReplicaPos.Load(); h != nil && err == nil {
		p = (*h)(i, p)
	}
	return p, err
}

// replicaLag is the lag of a replica at pos, the primary's flushed WAL
// position having been primary before pos was read (see ReplicaLag).
func replicaLag(primary int64, pos replicaPos) time.Duration {
	secs := pos.age
	switch {
	case !pos.inRecovery, pos.replayed >= primary:
		return 0
	case secs == -1:
		secs = pos.sinceStart
	}
	return time.Duration(max(secs, 0) * float64(time.Second))
}
