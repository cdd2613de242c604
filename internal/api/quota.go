package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wail-cdc/wail/internal/auth"
)

// Quotas: per-principal token buckets on writes (mutations: a batch
// costs one per mutation) and reads (Get, DescribeTable and ListTables
// calls, Subscribe opens, and the schema registry's reads), so
// that one client cannot take the whole process. A call over its quota is
// refused with ResourceExhausted before any work, saying when to retry
// (also in the Retry-After-Ms header, and as a RetryInfo detail). With auth off the caller is its
// network address.

// maxBuckets bounds the callers tracked; past it, full buckets (idle
// callers, who lose nothing by being forgotten) are dropped.
const maxBuckets = 10000

// rate is a token bucket's settings: per second and burst.
type rate struct {
	perSecond float64
	burst     float64
}

// bucket is one caller's tokens.
type bucket struct {
	tokens float64
	at     time.Time
}

// limiter holds the buckets of one kind of call. Its decisions are a
// function of the calls and the times given.
type limiter struct {
	name, setting string
	rate          rate
	mu            sync.Mutex
	buckets       map[string]*bucket
}

func newLimiter(name, setting string, perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	b := float64(burst)
	if b < 1 {
		b = math.Max(1, perSecond) // a second's worth
	}
	return &limiter{name: name, setting: setting, rate: rate{perSecond: perSecond, burst: b}, buckets: map[string]*bucket{}}
}

// take takes n tokens of caller at now, or returns how long until they
// are there (a cost above the burst waits for a full bucket and then
// takes it all: a large batch is slowed, never refused for ever).
func (l *limiter) take(caller string, n float64, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[caller]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.rate.burst, at: now}
		l.buckets[caller] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.rate.burst, b.tokens+d.Seconds()*l.rate.perSecond)
		b.at = now
	}
	need := math.Min(n, l.rate.burst)
	if b.tokens >= need {
		b.tokens -= n // may go below zero: a large batch is paid for
		return 0, true
	}
	return time.Duration((need - b.tokens) / l.rate.perSecond * float64(time.Second)), false
}

// sweep drops the buckets that are full by now.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate.perSecond >= l.rate.burst {
			delete(l.buckets, k)
		}
	}
}

// retryHeader carries the wait of a ResourceExhausted answer in
// milliseconds.
const retryHeader = "Retry-After-Ms"

// exhausted is the error of a call over its quota.
func (l *limiter) exhausted(who string, wait time.Duration) error {
	wait = max(wait.Round(time.Millisecond), time.Millisecond)
	err := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
		"%s is over its %s quota (%s: %g per second, burst %g); retry in %s", who, l.name, l.setting, l.rate.perSecond, l.rate.burst, wait))
	err.Meta().Set(retryHeader, fmt.Sprint(wait.Milliseconds()))
	return retryLater(err, wait)
}

// charge takes a call's cost from its caller's quota: a write's
// mutations, or one read.
func (g *Guard) charge(ctx context.Context, procedure string, peer connect.Peer, req any) error {
	var l *limiter
	cost := 1.0
	switch rules[procedure] {
	case auth.Produce:
		l = g.writes
		if m, ok := req.(proto.Message); ok {
			cost = float64(max(1, mutations(m)))
		}
	case auth.Read, auth.Consume, auth.Any:
		l = g.reads
	}
	if l == nil {
		return nil
	}
	who := caller(identityOf(ctx), peer.Addr)
	if wait, ok := l.take(who, cost, g.now()); !ok {
		return l.exhausted(who, wait)
	}
	return nil
}

// chargeHTTP takes one read from the caller's quota for an HTTP endpoint
// (a read of the schema registry); over it, it answers 429 with the wait
// and reports false.
func (g *Guard) chargeHTTP(w http.ResponseWriter, r *http.Request, id identity) bool {
	if g.reads == nil {
		return true
	}
	who := caller(id, r.RemoteAddr)
	wait, ok := g.reads.take(who, 1, g.now())
	if ok {
		return true
	}
	var ce *connect.Error
	errors.As(g.reads.exhausted(who, wait), &ce)
	w.Header().Set(retryHeader, ce.Meta().Get(retryHeader))
	w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds())))) // whole seconds, for HTTP clients
	refuse(w, r, http.StatusTooManyRequests, ce.Message())
	return false
}

// caller names whose quota a call takes: its principal, or with none its
// client's host.
func caller(id identity, addr string) string {
	if id.principal.IsZero() {
		return "client " + clientHost(addr)
	}
	return id.String()
}

// mutations is the length of a request's repeated message field (a
// batch), 0 if it has none.
func mutations(m proto.Message) int {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); f.IsList() && f.Kind() == protoreflect.MessageKind {
			return r.Get(f).List().Len()
		}
	}
	return 0
}

// clientHost is the host of a peer address.
func clientHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
