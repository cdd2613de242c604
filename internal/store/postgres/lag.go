package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// ReplicaLag returns, per replica in level order, how far its visible state
// trails the primary (wail doctor): 0 when it has replayed the WAL the
// primary had flushed when asked (pg_current_wal_flush_lsn(), read
// first), or is not in recovery; otherwise the age of the last
// transaction it replayed (now() - pg_last_xact_replay_timestamp(), on
// the replica), or the time since it started when it replayed none.
// A replica cut off from its primary has replayed all it received:
// compared with its own received position, as before, it reported 0
// however far the primary had gone. Right after a primary idle for long
// writes, a replica a few milliseconds behind reports that idle time
// (its last replayed transaction is that old): ask again.
func (s *Store) ReplicaLag(ctx context.Context) ([]time.Duration, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("postgres: replica lag: %w", store.ErrClosed)
	}
	if len(s.replicas) == 0 {
		return []time.Duration{}, nil
	}
	qctx, cancel := s.withTimeout(ctx)
	var primary int64
	err := s.primary.QueryRow(qctx, primaryLSNSQL).Scan(&primary)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("postgres: replica lag: the primary's WAL position: %w", s.classify(ctx, err))
	}
	lags := make([]time.Duration, len(s.replicas))
	for i := range s.replicas {
		pos, err := s.replicaPos(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("postgres: replica lag %s: %w", s.levels[i], s.classify(ctx, err))
		}
		lags[i] = replicaLag(primary, pos)
	}
	return lags, nil
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

// replicaPos reads replica i's replay position.
func (s *Store) replicaPos(ctx context.Context, i int) (replicaPos, error) {
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var p replicaPos
	err := s.replicas[i].QueryRow(qctx, replicaPosSQL).Scan(&p.inRecovery, &p.replayed, &p.age, &p.sinceStart)
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
