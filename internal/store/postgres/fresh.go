package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultReplicaWait is how long a replica read waits, at most, for the
// replica to have replayed what the primary had flushed when the read was
// asked (Options.ReplicaWait).
const DefaultReplicaWait = 50 * time.Millisecond

// Replica freshness. A read at a replica level waits until the replica
// is known to have replayed everything the primary had flushed when the
// read was asked, or until ReplicaWait has passed, then reads the replica
// either way (a replica that is still behind answers stale, and the
// resolver escalates as before). Without it, a read right after a write
// mostly finds the replica a few milliseconds short of the write and the
// resolver pays a third round trip, at the primary.
//
// "Known" comes from a prober that runs only while reads wait: it notes
// the time t, reads the primary's pg_current_wal_flush_lsn() (P >= the
// commit record of every write acknowledged before t: sessions commit
// with synchronous_commit=on), then each replica's
// pg_last_wal_replay_lsn() (R). R >= P proves the replica shows every
// commit acknowledged before t: its covered time becomes t. Earlier
// samples of P are kept, so a replica that replayed one of them is
// covered up to that sample's time. A replica that is not in recovery
// (pg_is_in_recovery(): a promoted replica, the primary itself) counts
// as covered: its replay position, if it has one, is that of the
// recovery it ran when it started, and never moves again. Probe errors cover nothing:
// the reads wait out ReplicaWait. A replica whose circuit breaker is open
// (sqlstore.Breaker) is not probed.
type freshness struct {
	primary  *pgxpool.Pool
	replicas []*pgxpool.Pool
	timeout  time.Duration
	wait     time.Duration
	skip     func(i int) bool // replica i is not probed (its breaker is open)

	demand  chan struct{} // a read waits: probe (buffered 1)
	stop    chan struct{}
	closing sync.Once
	done    chan struct{}

	mu      sync.Mutex
	covered []time.Time   // per replica
	samples []lsnSample   // recent primary samples, oldest first
	changed chan struct{} // closed after every probe

	waited, stale atomic.Uint64 // reads that waited; of them, gave up
}

type lsnSample struct {
	at  time.Time
	lsn int64
}

const maxSamples = 32

func newFreshness(primary *pgxpool.Pool, replicas []*pgxpool.Pool, timeout, wait time.Duration, skip func(int) bool) *freshness {
	f := &freshness{
		primary: primary, replicas: replicas, timeout: timeout, wait: wait, skip: skip,
		demand: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		covered: make([]time.Time, len(replicas)), changed: make(chan struct{}),
	}
	go f.run()
	return f
}

func (f *freshness) close() {
	f.closing.Do(func() { close(f.stop) })
	<-f.done
}

// await waits until replica i covers asked (the time its read was asked),
// ReplicaWait passes, or ctx ends; it reports whether the replica covers.
func (f *freshness) await(ctx context.Context, i int, asked time.Time) bool {
	var timer *time.Timer
	for {
		f.mu.Lock()
		ok, ch := !f.covered[i].Before(asked), f.changed
		f.mu.Unlock()
		if ok {
			return true
		}
		if timer == nil {
			f.waited.Add(1)
			timer = time.NewTimer(f.wait)
			defer timer.Stop()
		}
		select {
		case f.demand <- struct{}{}:
		default: // a probe is asked for already
		}
		select {
		case <-ch:
		case <-timer.C:
			f.stale.Add(1)
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (f *freshness) run() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			return
		case <-f.demand:
		}
		f.probe()
		f.mu.Lock()
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

const (
	primaryLSNSQL = `SELECT (pg_current_wal_flush_lsn() - '0/0')::bigint`
	// replayLSNSQL: -1 for a server not in recovery, whatever
	// pg_last_wal_replay_lsn() says: that stays at the last record of
	// the recovery the server ran at its start (after a crash, or before
	// its promotion), a position the primary's has long passed, and is
	// NULL only for a server started without one; 0 for a standby that
	// replayed nothing yet (it covers nothing).
	replayLSNSQL = `SELECT CASE WHEN pg_is_in_recovery() THEN coalesce((pg_last_wal_replay_lsn() - '0/0')::bigint, 0) ELSE -1 END`
)

// probe samples the primary, then every replica (see freshness).
func (f *freshness) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	at := time.Now()
	var p int64
	if err := f.primary.QueryRow(ctx, primaryLSNSQL).Scan(&p); err != nil {
		return
	}
	f.mu.Lock()
	f.samples = append(f.samples, lsnSample{at, p})
	if len(f.samples) > maxSamples {
		f.samples = f.samples[len(f.samples)-maxSamples:]
	}
	f.mu.Unlock()
	for i, r := range f.replicas {
		if f.skip(i) {
			// Bypassed: nobody waits for it, and a probe of a replica that
			// stopped answering would hold every other replica's reads
			// for the query timeout.
			continue
		}
		var replayed int64
		if err := r.QueryRow(ctx, replayLSNSQL).Scan(&replayed); err != nil {
			continue
		}
		f.mu.Lock()
		if replayed < 0 { // not in recovery: nothing to replay
			f.covered[i] = at
		}
		for _, s := range f.samples {
			if s.lsn <= replayed && s.at.After(f.covered[i]) {
				f.covered[i] = s.at
			}
		}
		f.mu.Unlock()
	}
}
