package cassandra

import (
	"errors"
	"net"
	"time"

	"github.com/gocql/gocql"
)

// A coordinator that cannot serve a request right now (it just restarted
// and does not see the other replicas yet: Unavailable; it is
// bootstrapping or overloaded; its connection broke; it timed out waiting
// for replicas) says nothing about the key: another node may serve it at
// once. So reads go to the next node of the plan (token-aware: another
// replica of the key) up to readTries times before the store reports the
// error. Without this, a node restarting would fail a share of the reads
// while the others serve, which the resolver counts against the keys (its
// outage rule) and ends in dead letters. Writes are not retried by the
// driver: only Apply knows whether a write may still be sent (its bound),
// and it tries again itself after a refusal that is certain (writeKey).
const readTries = 3

// A coordinator can also stall without an error: a frozen process, a
// network path that black-holes, a node too overloaded to answer. Its
// connections stay open and the driver waits the whole query timeout
// (store.query_timeout) before it tries another node, which is as long
// as the resolver gives a job of reads (5s): the token-aware plans of a
// third of the keys (replication 3) start with that node, and every one
// of those reads failed, after the whole wait. So a read not answered
// within readSpeculateAfter (at most a quarter of the query timeout) is
// sent to the next node of its plan as well, and then to one more
// (gocql's speculative execution; readTries coordinators in all), and
// the first answer wins (TestReadsGoAroundAStalledCoordinator). Reads
// only: a write sent twice may be refused for sure by one coordinator
// while the other applies it, and Apply could no longer say "not
// applied" of it (writeKey).
const readSpeculateAfter = 500 * time.Millisecond

// asRead makes q a read: retried on the next node when its coordinator
// cannot serve (nextNode), and sent to another node as well when its
// coordinator does not answer within delay.
func asRead(q *gocql.Query, delay time.Duration) *gocql.Query {
	return q.RetryPolicy(readRetry).Idempotent(true).
		SetSpeculativeExecutionPolicy(&gocql.SimpleSpeculativeExecution{NumAttempts: readTries - 1, TimeoutDelay: delay})
}

// speculateAfter is how long a read waits for its coordinator before it
// goes to another node as well (readSpeculateAfter).
func (s *Store) speculateAfter() time.Duration { return min(readSpeculateAfter, s.timeout/4) }

type nextNode struct{}

var readRetry gocql.RetryPolicy = nextNode{}

func (nextNode) Attempt(q gocql.RetryableQuery) bool { return q.Attempts() < readTries }

func (nextNode) GetRetryType(err error) gocql.RetryType {
	if coordinatorCannotServe(err) {
		return gocql.RetryNextHost
	}
	return gocql.Rethrow
}

// coordinatorCannotServe: errors of the coordinator or the connection to
// it, not of the request.
func coordinatorCannotServe(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeReadTimeout, gocql.ErrCodeReadFailure:
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, gocql.ErrConnectionClosed) || errors.Is(err, gocql.ErrTimeoutNoResponse) ||
		errors.Is(err, gocql.ErrTooManyTimeouts) || errors.Is(err, gocql.ErrNoStreams) || errors.As(err, &netErr)
}
