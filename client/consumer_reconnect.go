package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"connectrpc.com/connect"
)

// Reconnect says how a Consumer reopens a stream that dropped. The zero
// value reconnects, waiting 100ms doubling up to 5s (with jitter) between
// attempts, for as long as Next's context lasts, unless the server ends
// DefaultMaxEnds streams in a row cleanly without an event (MaxEnds). An
// UntilEnd subscription that reconnected ends at the end of what existed
// when it reconnected.
//
// A reconnection the server refuses saying it clears by itself (a
// google.rpc.RetryInfo detail, RetryDelay: no stream slot free, under
// api.max_subscriptions or api.max_subscriptions_per_client, while the
// server still counts the stream that dropped; the read quota) is tried
// again in the same way, waiting at least the server's hint (at most
// MaxWait). Any other refusal, resource_exhausted without that detail
// included, fails Next.
//
// The attempts count, and the wait grows, from the last stream that
// delivered an event or stayed open SteadyAfter: a stream that the
// server ends at once after a message without an event (a group member's
// join, its partitions) does not reset them.
type Reconnect struct {
	// Disabled: Next returns the error that ended the stream instead.
	Disabled bool
	// MinWait and MaxWait bound the wait before an attempt (defaults 100ms
	// and 5s): it doubles from MinWait with each failed attempt.
	MinWait, MaxWait time.Duration
	// MaxEnds bounds the streams in a row that the server ends without an
	// error, each before delivering an event and within SteadyAfter of
	// opening: after that many reconnections, the next such end fails
	// Next with ErrStreamEnded (a server shutting down for good, or one
	// that ends every stream at once: reconnecting does not help, and the
	// caller should know). Streams that fail with an error (unavailable
	// while a server restarts) neither count nor reset the count.
	// Default DefaultMaxEnds (10: about 20 s with the default waits);
	// negative: no bound.
	MaxEnds int
	// SteadyAfter is how long a stream stays open to count as up though
	// it delivered no event (an idle table's): its end then starts the
	// attempts, the wait and MaxEnds' count again. Shorter, a server that
	// keeps each stream open a while before ending it is reconnected to
	// for longer; longer, an idle stream that drops now and then counts
	// towards MaxEnds. Default DefaultSteadyAfter (10s); negative is
	// refused by NewConsumer.
	SteadyAfter time.Duration
	// OnReconnect, if set, is called (from Next) before each attempt with
	// the error that ended the stream (nil: the server ended it) and the
	// attempt's number since a stream last delivered an event or stayed
	// open SteadyAfter (1, 2, ...).
	OnReconnect func(err error, attempt int)
}

// DefaultMaxEnds is Reconnect.MaxEnds when unset.
const DefaultMaxEnds = 10

// DefaultSteadyAfter is Reconnect.SteadyAfter when unset.
const DefaultSteadyAfter = 10 * time.Second

// SteadyStream is the default of Reconnect.SteadyAfter, which sets it.
//
// Deprecated: use DefaultSteadyAfter, or set Reconnect.SteadyAfter.
const SteadyStream = DefaultSteadyAfter

// ErrSnapshotInterrupted: the stream dropped during a snapshot (From or
// Start "snapshot"), which cannot be resumed: a new snapshot leaves out
// the keys deleted meanwhile, so a read model built from the first one
// would keep them. Discard what the snapshot built and open a new
// Consumer (a group whose snapshot was not over takes it again). A group
// member whose stream drops once it acknowledged the snapshot's end joins
// again instead (the server may have committed that end): it fails with
// ErrSnapshotInterrupted only if the snapshot comes again (its rows, or
// its end when it has none: the end was not committed) or its join says
// that the group's positions are another member's snapshot's end (this
// one's was not committed, and the group goes on after that one), else
// goes on after the snapshot.
var ErrSnapshotInterrupted = errors.New("the stream dropped during a snapshot, which cannot be resumed")

// startCursorHeader is api.StartCursorHeader: a subscription's start.
const startCursorHeader = "Wail-Start-Cursor"

// reconnecting is a Consumer's reconnection state.
type reconnecting struct {
	// established: a stream was up once (a consumer whose first stream
	// fails gets the error: a wrong address or table should not wait).
	established bool
	// received: the stream delivered an event.
	received bool
	// attempt counts the attempts since a stream delivered an event or
	// stayed open Reconnect.SteadyAfter.
	attempt int
	// ends counts the streams in a row the server ended cleanly, each
	// before an event and within Reconnect.SteadyAfter (MaxEnds).
	ends int
	// openedAt is when the stream in place opened.
	openedAt time.Time
	// inSnapshot: a group member's last message was a snapshot row.
	inSnapshot bool
	// atEnd: an until-end subscription got the message of its end.
	atEnd bool
}

// up: the stream delivered a message; with an event, the stream counts as
// up (the attempts and the clean ends count from zero again).
func (r *reconnecting) up(event bool) {
	r.established = true
	if event {
		r.attempt, r.ends = 0, 0
	}
}

// startCursor takes a subscription's start (its response header) as its
// position while no event gave one, so that a stream lost before its
// first event resumes where it started.
func (c *Consumer) startCursor() {
	h := c.sub.ResponseHeader().Get(startCursorHeader)
	if h == "" {
		return
	}
	c.rc.established = true
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cursor == "" {
		c.cursor = h
	}
}

// dropped handles the end of the stream (err nil: the server ended it):
// it reopens it after a wait when that is safe, or returns the error.
func (c *Consumer) dropped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !c.retryable(err) {
		return c.ended(ctx, err)
	}
	if c.midSnapshot() {
		if err == nil {
			err = ErrStreamEnded
		}
		return fmt.Errorf("consumer of %s: %w (%w)", c.cfg.Table, ErrSnapshotInterrupted, err)
	}
	if c.steady() {
		c.rc.attempt, c.rc.ends = 0, 0 // it was up, if idle
	}
	if err == nil {
		c.rc.ends++
		if limit := cmp.Or(c.cfg.Reconnect.MaxEnds, DefaultMaxEnds); limit >= 0 && c.rc.ends > limit {
			return fmt.Errorf("consumer of %s: %w %d times in a row, each time before any event (Reconnect.MaxEnds %d): open a new consumer",
				c.cfg.Table, ErrStreamEnded, c.rc.ends, limit)
		}
	}
	for {
		c.rc.attempt++
		if f := c.cfg.Reconnect.OnReconnect; f != nil {
			f(err, c.rc.attempt)
		}
		wait := c.cfg.Reconnect.wait(c.rc.attempt)
		if hint, ok := RetryDelay(err); ok {
			wait = max(wait, min(hint, c.cfg.Reconnect.maxWait())) // as the server asks, within MaxWait
		}
		if err := c.pause(ctx, wait); err != nil {
			return err
		}
		_ = c.closeStream() // its error is the one that ended it
		from := c.Cursor()
		if from == "" {
			from = c.cfg.From // nothing delivered yet: the same start
		}
		c.rc.received = false
		err = c.open(from)
		switch {
		case err == nil:
			return nil
		case c.ctx.Err() != nil:
			return c.ended(ctx, err) // closed meanwhile
		case errors.Is(err, ErrOpenTimeout):
			// Not answered in time: another attempt.
		case retryLater(err):
			// Refused until, say, a slot frees: another attempt.
		default:
			return fmt.Errorf("consumer of %s: reconnect: %w", c.cfg.Table, gapError(err))
		}
	}
}

// steady reports whether the stream in place stayed open
// Reconnect.SteadyAfter: it counts as up though it delivered no event.
func (c *Consumer) steady() bool {
	return time.Since(c.rc.openedAt) >= cmp.Or(c.cfg.Reconnect.SteadyAfter, DefaultSteadyAfter)
}

// pause waits d before an attempt, unless ctx ends (its error) or the
// consumer is closed.
func (c *Consumer) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return c.ended(ctx, c.ctx.Err())
	}
}

// retryable reports whether a stream that ended with err is reopened.
func (c *Consumer) retryable(err error) bool {
	if c.cfg.Reconnect.Disabled || !c.rc.established {
		return false
	}
	if retryLater(err) {
		// Refused for now (a stream slot, the read quota), saying so: the
		// old stream, dropped, may still be counted until the server sees
		// it end.
		return true
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeAborted:
		return true
	case connect.CodeCanceled:
		// Neither Next's context nor the consumer's ended (dropped looks
		// first): connect reports a connection reset by the server as
		// canceled (ECONNRESET, which it takes for a client gone).
		return c.ctx.Err() == nil
	case connect.CodeUnauthenticated:
		// A credential that expired during the stream (a JWT, a client
		// certificate): once more, with the credential as it is now
		// (Options.TokenFile or TokenSource renewed, a certificate
		// renewed on disk, presented by the new connection the server's
		// refusal asked for). Refused again, it fails. A stream up
		// SteadyAfter (an idle table's) counts as up, as in dropped.
		return c.rc.attempt == 0 || c.steady()
	case connect.CodeInternal:
		// The connection closed (a FIN, not a reset: a load balancer's
		// idle timeout, a proxy restarting) in the middle of the stream's
		// body: connect reports it as a protocol error, "incomplete
		// envelope: unexpected EOF". The server did not end the stream:
		// it dropped.
		return errors.Is(err, io.ErrUnexpectedEOF)
	case connect.CodeAlreadyExists:
		// A member joining again while the server still holds its
		// previous stream (it has not seen it drop yet).
		return c.group != nil && c.rc.attempt > 0
	}
	return err == nil
}

// midSnapshot reports whether the stream delivered part of a snapshot and
// not its end (a subscription that got no event yet built nothing: it
// takes the snapshot again).
func (c *Consumer) midSnapshot() bool {
	if c.group != nil {
		// Once the member told the server the snapshot's end, the server
		// may have committed it (its answer does not wait for that):
		// joined again, the member is told whether the snapshot is over
		// (receive). Before, it has nothing committed: the snapshot is
		// taken again (and the end is not told from now).
		return c.snapshotDropped()
	}
	return c.cfg.From == "snapshot" && c.rc.received && c.Cursor() == ""
}

// retryLater: err is a refusal the server marked as clearing by itself
// (RetryDelay); other resource_exhausted errors (a message over
// MaxReceiveBytes, a group snapshot another member takes) are not.
func retryLater(err error) bool {
	_, ok := RetryDelay(err)
	return ok
}

// maxWait is MaxWait or its default.
func (r Reconnect) maxWait() time.Duration {
	if r.MaxWait <= 0 {
		return 5 * time.Second
	}
	return r.MaxWait
}

// wait is the wait before the attempt'th attempt: MinWait doubling up to
// MaxWait, less up to half at random.
func (r Reconnect) wait(attempt int) time.Duration {
	lo, hi := r.MinWait, r.maxWait()
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - rand.N(d/2+1)
}
