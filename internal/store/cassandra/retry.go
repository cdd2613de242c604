package cassandra

import (
	"errors"
	"net"

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
