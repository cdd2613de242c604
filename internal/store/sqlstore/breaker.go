package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Replica circuit breaker. A replica whose host stops answering (a
// network partition, a hung server) cost every read sent to it the whole
// query timeout before the resolver read the next level: under load the
// resolver's throughput collapsed while the primary was fine. So each
// replica has a breaker: after Breaker.Failures reads in a row that timed
// out or lost their connection it opens, and reads at its level fail at
// once as store.ErrUnavailable (*Bypassed), which the resolver answers as
// it answers any failed replica read, by reading the next level (the
// primary at the end): correctness is that of escalation. After
// Breaker.Backoff one read goes to the replica (half-open); if it
// answers the breaker closes, if it stalls too the breaker opens again
// for twice as long, up to Breaker.MaxBackoff.

// Breaker defaults (store.replica_breaker_*).
const (
	DefaultBreakerFailures   = 3
	DefaultBreakerBackoff    = time.Second
	DefaultBreakerMaxBackoff = 30 * time.Second
)

// Breaker configures the replica circuit breakers.
type Breaker struct {
	// Failures is how many replica reads in a row that timed out or lost
	// their connection open the breaker; 0 means DefaultBreakerFailures,
	// negative: never open.
	Failures int
	// Backoff is how long an opened breaker sends no read to its replica
	// before one read probes it; 0 means DefaultBreakerBackoff.
	Backoff time.Duration
	// MaxBackoff bounds the backoff, which doubles with each probe that
	// stalls too; 0 means DefaultBreakerMaxBackoff.
	MaxBackoff time.Duration
}

func (b Breaker) withDefaults() Breaker {
	if b.Failures == 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.Backoff <= 0 {
		b.Backoff = DefaultBreakerBackoff
	}
	if b.MaxBackoff <= 0 {
		b.MaxBackoff = DefaultBreakerMaxBackoff
	}
	b.MaxBackoff = max(b.MaxBackoff, b.Backoff)
	return b
}

// Outcome is what one replica read says of its replica.
type Outcome int

const (
	// Answered: the replica answered (rows, none, or an SQL error).
	Answered Outcome = iota
	// Stalled: the read timed out or lost its connection.
	Stalled
	// Unknown: the read says nothing of the replica (its caller canceled
	// it, the replica was refused, the store is closing).
	Unknown
)

// ReadOutcome returns the outcome of a replica read whose error is err
// (nil: it answered), classified by the store as classified (unavailable
// for timeouts and connection errors), race telling a lock race (an
// answer) from a stall. The end of its caller's deadline is a stall too:
// replicas are read by the resolver, whose jobs of reads are bounded by
// as long as the default store.query_timeout, so its deadline, not the
// query's, ends a read of a stalled replica (the breaker never opened);
// the API reads the primary.
func ReadOutcome(ctx context.Context, err, classified error, race bool) Outcome {
	var no *NotOurs
	switch {
	case err == nil:
		return Answered
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return Stalled
	case ctx.Err() != nil, errors.As(err, &no), errors.Is(classified, store.ErrClosed):
		return Unknown
	case errors.Is(classified, store.ErrUnavailable) && !race:
		return Stalled
	}
	return Answered
}

// Bypassed is the error of a read at a replica level while its breaker
// is open; it is store.ErrUnavailable (the resolver reads the next level).
type Bypassed struct {
	Level, Addr string
	Until       time.Time // when a read probes the replica again
	Last        string    // the last stalled read's error
}

func (e *Bypassed) Error() string {
	return fmt.Sprintf("%s (%s) does not answer (%s): its reads go to the next level, the primary at the end, and one probes it again at %s; check the replica's host and the network to it",
		e.Level, e.Addr, e.Last, e.Until.UTC().Format(time.RFC3339Nano))
}

func (e *Bypassed) Unwrap() error { return store.ErrUnavailable }

// breaker is one replica's.
type breaker struct {
	mu       sync.Mutex
	fails    int       // stalled reads in a row while closed
	open     bool      // open or half-open
	until    time.Time // open: no read before then
	backoff  time.Duration
	probe    uint64 // half-open: the number of the read that probes it now; 0: none
	probes   uint64 // probes let through, ever (numbers them)
	last     string
	bypassed uint64 // reads failed at once, ever
}

// Read is a read that Replicas.Admit let through: report its outcome to
// Done (a read in parts, once per part). Only the probe's outcome moves
// an open breaker: a read let through while it was closed and finishing
// while the probe is out says nothing the opening did not (its stall
// must not stand for the probe's, which doubled the backoff once more
// than the probes that stalled; its cancellation must not let a second
// probe out). A read at the primary's level reports nothing.
type Read struct {
	rs    *Replicas
	level store.Level
	probe uint64 // the probe's number; 0: not a probe
}

// Level is the level the read was let through at.
func (r Read) Level() store.Level { return r.level }

// now is the breakers' clock (a test's, or the time).
func (rs *Replicas) now() time.Time {
	if rs.clock != nil {
		return rs.clock()
	}
	return time.Now()
}

// SetBreaker configures the replicas' breakers; call it before use.
func (rs *Replicas) SetBreaker(b Breaker) { rs.cfg = b }

// admit returns the read let through to the replica of level (closed,
// or the half-open probe), or the error that bypasses it.
func (rs *Replicas) admit(level store.Level, now time.Time) (Read, error) {
	r := rs.reps[level]
	b := &r.breaker
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return Read{rs: rs, level: level}, nil
	}
	if !now.Before(b.until) && b.probe == 0 {
		b.probes++
		b.probe = b.probes
		return Read{rs: rs, level: level, probe: b.probe}, nil
	}
	b.bypassed++
	return Read{}, &Bypassed{Level: r.level, Addr: r.addr, Until: b.until, Last: b.last}
}

// Done reports the outcome of read r (a no-op at the primary's level). It
// returns whether r opened its replica's breaker (opened: log it, once)
// or closed it (closed).
func (r Read) Done(o Outcome, err error) (opened, closed bool) {
	rs := r.rs
	if rs == nil {
		return false, false
	}
	cfg := rs.cfg.withDefaults()
	if cfg.Failures < 0 {
		return false, false
	}
	b := &rs.reps[r.level].breaker
	b.mu.Lock()
	defer b.mu.Unlock()
	isProbe := r.probe != 0 && r.probe == b.probe
	switch o {
	case Answered: // any answer, the probe's or a late read's, closes it
		b.fails = 0
		closed = b.open
		b.open, b.probe, b.backoff = false, 0, 0
	case Stalled:
		if err != nil {
			b.last = err.Error()
		}
		switch {
		case isProbe: // the probe stalled too: longer
			b.probe = 0
			b.backoff = min(2*b.backoff, cfg.MaxBackoff)
			b.until = rs.now().Add(b.backoff)
		case !b.open:
			b.fails++
			if b.fails >= cfg.Failures {
				b.open, b.fails, opened = true, 0, true
				b.backoff = cfg.Backoff
				b.until = rs.now().Add(b.backoff)
			}
		}
	case Unknown:
		if isProbe {
			b.probe = 0 // the next read probes
		}
	}
	return opened, closed
}

// Open reports whether replica i's breaker is open (or half-open): its
// reads are bypassed but a probe.
func (rs *Replicas) Open(i int) bool {
	b := &rs.reps[i].breaker
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// BypassedNow returns the error of each replica whose breaker is open
// now (*Bypassed: which, why, until when), in level order.
func (rs *Replicas) BypassedNow() []error {
	var errs []error
	for _, r := range rs.reps {
		b := &r.breaker
		b.mu.Lock()
		if b.open {
			errs = append(errs, &Bypassed{Level: r.level, Addr: r.addr, Until: b.until, Last: b.last})
		}
		b.mu.Unlock()
	}
	return errs
}

// Bypassed returns how many replicas' breakers are open (or half-open)
// now, and how many reads they failed at once so far.
func (rs *Replicas) Bypassed() (replicas int, reads uint64) {
	for _, r := range rs.reps {
		r.breaker.mu.Lock()
		if r.breaker.open {
			replicas++
		}
		reads += r.breaker.bypassed
		r.breaker.mu.Unlock()
	}
	return replicas, reads
}
