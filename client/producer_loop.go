package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// The producer's loop owns all its state; Write hands it writes on in,
// the stream's receiver hands it answers.

type flight struct {
	writes []*pending
	// deadline: the earliest delivery timeout of its writes not answered.
	deadline time.Time
	// stuck: when the batch, unanswered since it was sent, gives its
	// stream up (twice the delivery timeout after it was sent).
	stuck time.Time
	// sent: when it was sent; tables: the tables of its writes.
	sent   time.Time
	tables map[string]bool
	// probe: the batch without writes that asks a new stream's server
	// for its clock (server_time) before any write goes.
	probe bool
	// bounded: the batch carries a stamp_before, set by the stream's
	// sender as it sends the batch (not when the loop queued it behind
	// the batches before it: on a link slow for the bytes in flight, a
	// bound counted from then passed before the batch could reach the
	// server, and every batch was refused); until: the local time by
	// which the server refuses to stamp it, stored by the sender before
	// it sends (nil: never sent).
	bounded bool
	until   atomic.Pointer[time.Time]
	// window: its stamp window (until less window is when the sender
	// took it).
	window time.Duration
}

// outgoing is a batch handed to a stream's sender, with what it sets the
// batch's stamp_before from as it sends it.
type outgoing struct {
	req   *wailv1.WriteStreamRequest
	f     *flight
	clock serverClock
}

type answer struct {
	gen  int
	resp *wailv1.WriteStreamResponse
	err  error
}

type loop struct {
	p      *Producer
	ctx    context.Context
	queue  []*pending     // not in flight, in arrival order
	queued map[string]int // writes of each key in the queue
	// ready is how many queued writes could go in the next batch, and
	// readyBytes their size: counted by the last take, plus the arrivals
	// since that could.
	ready      int
	readyBytes int
	wake       time.Time       // when pump must look again at the latest
	seen       map[string]bool // take's scratch: keys met in the queue
	spare      []*pending      // the inbox's next backing array
	flights    map[uint64]*flight
	busy       map[string]bool      // keys in a batch in flight
	fence      map[string]time.Time // keys lost with a broken stream: not sent before
	seq        uint64
	arrived    uint64

	stream    *streamConn
	gen       int
	answers   chan answer
	reopenAt  time.Time // no new stream before
	reopenErr int       // consecutive failed streams
	// broke is why the last stream failed (nil once a batch is answered
	// after it): a write that was never sent and fails at its delivery
	// timeout says it (a certificate expired, a server down).
	broke error
	// paused: no write of the table is sent before (the server refused
	// one of its writes resource_exhausted and asked for this wait,
	// retry_after_ms).
	paused map[string]time.Time
	timer  *time.Timer
	// clock estimates the stream's server's clock, for stamp_before;
	// probed: the stream's probe was answered (writes go from then on,
	// bounded when it told the clock).
	clock  serverClock
	probed bool
	// window is each batch's stamp window, from the answers' times.
	window stampWindow
	// newConn: a stream ended unauthenticated (a credential expired
	// during it, a client certificate say): the next one goes on a new
	// connection, whose handshake presents the certificate on disk now
	// (Options.CertFile is read at each handshake), not on the one whose
	// handshake presented the expired one: a server that checks a
	// stream's credential again ends each stream on it in turn.
	newConn bool
	// reauth: the writes of a stream ended unauthenticated (with
	// reauth) went again on a new stream, once (until an answer comes):
	// refused again, the credential is bad, not expired and renewed, and
	// they fail.
	reauth error
	// serverMax is the stream's server's cap on a batch, encoded
	// (max_batch_bytes of its answers; 0: not told): batches are kept
	// within it when it is below MaxBatchBytes.
	serverMax int
	// unprobed: a server ended a stream permission_denied on its probe
	// (one before per-batch refusals, with a token scoped to tables):
	// streams go without a probe, unbounded, as to a server without
	// server_time.
	unprobed bool
}

// streamConn is one open WriteStream. Its sender sends the batches
// handed to it on reqs (the loop never waits for a send: a server that
// stops reading blocks only the sender), its receiver hands the answers
// to the loop; cancel stops both.
type streamConn struct {
	gen    int
	reqs   chan outgoing // at most MaxInFlight: one per flight
	cancel context.CancelFunc
}

func (p *Producer) run() {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &loop{p: p, ctx: ctx, flights: map[uint64]*flight{}, busy: map[string]bool{}, fence: map[string]time.Time{},
		queued: map[string]int{}, seen: map[string]bool{},
		answers: p.answers, timer: time.NewTimer(time.Hour), window: newStampWindow(p.fence)}
	defer l.timer.Stop()
	notify, stop := p.notify, p.stop
	due := true // pump at once; otherwise at l.wake
	for {
		closing := stop == nil
		if due || !time.Now().Before(l.wake) {
			l.wake = l.pump(closing)
		}
		if closing && len(l.queue) == 0 && l.allAnswered() {
			l.closeStream()
			now := time.Now()
			for seq, f := range l.flights { // their writes failed at their delivery timeouts
				for _, w := range f.writes {
					l.fence[w.key] = maxTime(l.fence[w.key], l.fenceOf(f, now))
				}
				delete(l.flights, seq)
			}
			until := l.fencedUntil(now)
			if until.IsZero() {
				return
			}
			// An attempt lost with a stream may still be stamped until
			// then: a producer made after this one (here or in another
			// process) is not overtaken by it on a key it writes again.
			l.wake = until
		}
		l.timer.Reset(max(time.Until(l.wake), 0))
		due = true
		select {
		case <-notify:
			due = l.takeInbox()
		case a := <-l.answers:
			l.answer(a)
		case <-l.timer.C:
		case <-stop:
			l.takeInbox()           // what entered before Close
			notify, stop = nil, nil // send what is held, take nothing more
		case <-p.abort:
			l.takeInbox() // Close came before: nothing enters after
			// Answers that came already are taken first: their writes
			// are answered as the server answered them, not ErrClosed.
			for drained := false; !drained; {
				select {
				case a := <-l.answers:
					l.answer(a)
				default:
					drained = true
				}
			}
			l.closeStream()
			for _, f := range l.flights {
				l.queue = append(l.queue, f.writes...)
			}
			for _, w := range l.queue {
				l.finish(w, Result{}, ErrClosed)
			}
			return
		}
	}
}

// takeInbox queues the writes handed over since the last time; true if
// a batch may be due at once because of them.
func (l *loop) takeInbox() bool {
	p := l.p
	p.mu.Lock()
	ws := p.inbox
	p.inbox = l.spare[:0]
	p.mu.Unlock()
	due := false
	for _, w := range ws {
		due = l.add(w) || due
	}
	clear(ws)
	l.spare = ws
	return due
}

// add queues a write that arrived and says whether a batch may be due
// at once because of it (a full one). Otherwise it only brings l.wake
// forward to its delivery timeout and to when its linger ends, if a batch
// not full could go then: so an arrival costs no look at the whole queue.
func (l *loop) add(w *pending) bool {
	l.arrived++
	w.n = l.arrived
	l.queue = append(l.queue, w)
	l.queued[w.key]++
	l.wake = minTime(l.wake, w.deadline.Add(time.Millisecond)) // to fail it in time
	if l.queued[w.key] > 1 || l.busy[w.key] {
		return false // waits for the write of its key ahead of it
	}
	if f, fenced := l.fence[w.key]; fenced {
		if time.Now().Before(f) {
			l.wake = minTime(l.wake, f) // the look after the fence decides
			return false
		}
		delete(l.fence, w.key) // its writes were all answered or failed meanwhile
	}
	l.ready++
	l.readyBytes += w.size
	if l.ready >= l.p.cfg.BatchSize || l.readyBytes >= l.batchBytes() {
		return len(l.flights) < l.p.cfg.MaxInFlight
	}
	if len(l.flights) == 0 {
		l.wake = minTime(l.wake, w.at.Add(l.p.cfg.Linger))
	} else {
		l.wake = minTime(l.wake, w.at.Add(l.holdBehind()))
	}
	return false
}

// batchBytes is the most bytes a batch's mutations take: MaxBatchBytes,
// or the stream's server's cap when it is lower, less the batch's head.
func (l *loop) batchBytes() int {
	n := l.p.cfg.MaxBatchBytes
	if l.serverMax > 0 {
		n = min(n, l.serverMax)
	}
	return n - headBytes
}

// holdBehind is the longest a batch not full waits for the batches in
// flight to be answered (so that it grows meanwhile): a slow batch (a
// table whose log stalls) held every other write back until its delivery
// timeout.
func (l *loop) holdBehind() time.Duration {
	return max(minHoldBehind, 10*l.p.cfg.Linger)
}

// minHoldBehind is holdBehind's least.
const minHoldBehind = 100 * time.Millisecond

// pump fails the writes past their delivery timeout, sends the batches
// that are due and returns when to look again (an answer or an arrival
// that fills a batch also makes it look).
func (l *loop) pump(closing bool) time.Time {
	now := time.Now()
	l.expire(now)
	for len(l.flights) < l.p.cfg.MaxInFlight {
		batch, next := l.take(now, closing)
		if len(batch) == 0 {
			return minTime(next, l.flightsWake(now))
		}
		if !l.send(batch, now) {
			// No stream before reopenAt: look again then (or to fail a
			// write in time), not at once. A stream whose probe is out
			// sends once it is answered (the answer wakes the loop).
			wake := l.flightsWake(now)
			if l.stream == nil {
				wake = minTime(l.reopenAt, wake)
			}
			return l.queueWake(wake)
		}
	}
	return l.queueWake(l.flightsWake(now))
}

// queueWake is wake, or earlier the time to fail a queued write at its
// delivery timeout.
func (l *loop) queueWake(wake time.Time) time.Time {
	for _, w := range l.queue {
		wake = minTime(wake, w.deadline.Add(time.Millisecond))
	}
	return wake
}

// allAnswered: every write in flight has its outcome (none, or those
// left failed at their delivery timeout: Close need not wait for their
// answers).
func (l *loop) allAnswered() bool {
	for _, f := range l.flights {
		for _, w := range f.writes {
			if !w.answered {
				return false
			}
		}
	}
	return true
}

// flightsWake is when to look again to fail a write in flight at its
// delivery timeout.
func (l *loop) flightsWake(now time.Time) time.Time {
	wake := now.Add(time.Hour)
	for _, f := range l.flights {
		wake = minTime(wake, minTime(f.deadline, f.stuck).Add(time.Millisecond))
	}
	return wake
}

// firstDeadline is the earliest delivery timeout of the writes not
// answered (far ahead if none).
func firstDeadline(ws []*pending) time.Time {
	var d time.Time
	for _, w := range ws {
		if !w.answered && (d.IsZero() || w.deadline.Before(d)) {
			d = w.deadline
		}
	}
	if d.IsZero() {
		d = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	return d
}

// take removes from the queue the next batch to send, if one is due (full:
// BatchSize writes or MaxBatchBytes; lingered long enough with no batch in
// flight; or closing), and
// says when to look again otherwise. A key goes in at most one batch in
// flight, once: later writes of it wait, and so do writes past a backoff
// or a fence. It also counts l.ready.
func (l *loop) take(now time.Time, closing bool) (batch []*pending, next time.Time) {
	next = now.Add(time.Hour)
	size, maxBytes := l.p.cfg.BatchSize, l.batchBytes()
	clear(l.seen)
	picked, ready := 0, 0
	pickedBytes, readyBytes := 0, 0
	full := false // no more fits in the batch
	var first time.Time
	// stalled: tables of a batch unanswered past holdBehind; their writes
	// wait for its answer, so that they do not take every slot.
	// Only once they hold half the slots: a single slow batch still lets
	// its table's next writes go after holdBehind.
	var stalled map[string]bool
	n := 0
	for _, f := range l.flights {
		if now.Sub(f.sent) > l.holdBehind() {
			n++
		}
	}
	if n >= max(1, l.p.cfg.MaxInFlight/2) {
		stalled = map[string]bool{}
		for _, f := range l.flights {
			if now.Sub(f.sent) > l.holdBehind() {
				for t := range f.tables {
					stalled[t] = true
				}
			}
		}
	}
	for _, w := range l.queue {
		next = minTime(next, w.deadline.Add(time.Millisecond)) // to fail it in time
		if l.busy[w.key] || l.seen[w.key] || stalled[w.m.GetTable()] {
			continue
		}
		l.seen[w.key] = true // one write of a key per batch
		at := w.notBefore
		if f, ok := l.fence[w.key]; ok {
			if !now.Before(f) {
				delete(l.fence, w.key)
			} else {
				at = maxTime(at, f)
			}
		}
		if until, ok := l.paused[w.m.GetTable()]; ok {
			if !now.Before(until) {
				delete(l.paused, w.m.GetTable())
			} else {
				at = maxTime(at, until)
			}
		}
		if now.Before(at) {
			next = minTime(next, at)
			continue
		}
		ready++
		readyBytes += w.size
		if picked == size || (picked > 0 && pickedBytes+w.size > maxBytes) {
			full = true
		}
		if !full {
			if picked == 0 {
				first = w.at
			}
			w.picked = true
			picked++
			pickedBytes += w.size
		}
	}
	l.ready, l.readyBytes = ready, readyBytes
	full = full || picked == size
	if picked > 0 && !full && !closing {
		if due := first.Add(l.p.cfg.Linger); now.Before(due) {
			next = minTime(next, due)
			picked = 0
		} else if hold := first.Add(l.holdBehind()); len(l.flights) > 0 && now.Before(hold) {
			next = minTime(next, hold)
			picked = 0 // the answer makes the loop look again, or the hold's end
		}
		if picked == 0 {
			for _, w := range l.queue {
				w.picked = false
			}
		}
	}
	if picked == 0 {
		return nil, next
	}
	batch = make([]*pending, 0, picked)
	rest := l.queue[:0]
	for _, w := range l.queue {
		if w.picked {
			w.picked = false
			batch = append(batch, w)
			l.unqueued(w)
		} else {
			rest = append(rest, w)
		}
	}
	clear(l.queue[len(rest):])
	l.queue = rest
	l.ready -= picked
	l.readyBytes -= pickedBytes
	return batch, now
}

// unqueued counts w out of the queue.
func (l *loop) unqueued(w *pending) {
	if l.queued[w.key]--; l.queued[w.key] <= 0 {
		delete(l.queued, w.key)
	}
}

// expire fails the writes past their delivery timeout: queued ones, and
// ones in flight (they may have been written; their keys stay busy until
// the answer, or fenced if the stream breaks). A batch unanswered twice
// the delivery timeout after it was sent, every write of it failed, means
// the stream is stuck (a server that reads and never answers, on a
// connection that still answers pings): it is given up as a broken one,
// so that its batches do not hold the in-flight slots for good. (Counted
// from the send, not from the writes' calls: a batch sent late, after
// retries, is not taken for stuck at once.)
func (l *loop) expire(now time.Time) {
	stuck := false
	for _, f := range l.flights {
		if now.After(f.deadline) {
			for _, w := range f.writes {
				if now.After(w.deadline) {
					l.finish(w, Result{}, &WriteError{Code: connect.CodeDeadlineExceeded,
						Message: "not answered within the producer's delivery timeout: its batch is unanswered, it may have been written"})
				}
			}
			f.deadline = firstDeadline(f.writes)
		}
		stuck = stuck || now.After(f.stuck) && !slices.ContainsFunc(f.writes, func(w *pending) bool { return !w.answered })
	}
	if stuck {
		l.broken(connect.NewError(connect.CodeDeadlineExceeded,
			errors.New("a batch got no answer within twice the producer's delivery timeout: the stream is given up and a new one opened")))
	}
	maxBytes := l.batchBytes()
	l.queue = slices.DeleteFunc(l.queue, func(w *pending) bool {
		if w.size > maxBytes {
			// Passes the server's cap alone (MaxBatchBytes does not): sent,
			// it would end the stream at each try, and fail the writes of
			// its batch with it.
			l.finish(w, Result{}, &WriteError{Code: connect.CodeInvalidArgument, Message: fmt.Sprintf(
				"the write takes %d bytes in a batch, over the server's cap on a batch (%d bytes, less %d for the batch's seq and stamp_before: limits.max_batch_mutations mutations at limits.max_key_bytes and limits.max_value_bytes, at most api.max_write_request_bytes); not sent on its stream",
				w.size, l.serverMax, headBytes)})
			l.unqueued(w)
			return true
		}
		if !now.After(w.deadline) {
			return false
		}
		err := w.lastErr
		if err == nil {
			msg := "not written within the producer's delivery timeout"
			if l.broke != nil {
				msg += "; the last write stream failed: " + l.broke.Error()
			}
			if l.reauth != nil && l.reauth != l.broke {
				msg += "; before, one ended: " + l.reauth.Error()
			}
			err = &WriteError{Code: connect.CodeDeadlineExceeded, Message: msg}
		}
		l.finish(w, Result{}, err)
		l.unqueued(w)
		return true
	})
}

// send sends batch on the stream, opening one if needed; false (batch
// back on the queue) if no stream can be had now.
func (l *loop) send(batch []*pending, now time.Time) bool {
	if l.stream == nil && !l.open(now) {
		l.requeue(batch)
		return false
	}
	if !l.probed && !l.unprobed {
		// Before a stream's first write, its server's clock: without
		// it the first batches would carry no stamp_before, and one the
		// network held could overwrite a newer write of its keys.
		if !l.probing() {
			l.sendProbe(now)
		}
		l.requeue(batch)
		return false
	}
	l.seq++
	// Stamped within the window after this send or not at all: a batch
	// that the network delivers later, after the stream broke and its
	// keys were written again, is refused, not stamped over those writes.
	window := l.window.get()
	req := &wailv1.WriteStreamRequest{Seq: l.seq, Mutations: make([]*wailv1.Mutation, len(batch))}
	for i, w := range batch {
		req.Mutations[i] = w.m
		l.busy[w.key] = true
		w.tries++
	}
	tables := map[string]bool{}
	for _, w := range batch {
		tables[w.m.GetTable()] = true
	}
	f := &flight{writes: batch, deadline: firstDeadline(batch), stuck: now.Add(2 * l.p.cfg.DeliveryTimeout), sent: now, tables: tables,
		bounded: l.clock.known && window > 0, window: window}
	l.flights[l.seq] = f
	select {
	case l.stream.reqs <- outgoing{req: req, f: f, clock: l.clock}:
	default: // more flights than MaxInFlight: the server answered batches it was not sent
		l.broken(errors.New("the server answered batches not sent yet"))
		return false
	}
	return true
}

// answer takes an answer of the stream.
func (l *loop) answer(a answer) {
	if l.stream == nil || a.gen != l.stream.gen {
		return // of a stream already given up
	}
	if a.err != nil {
		l.broken(a.err)
		return
	}
	f, ok := l.flights[a.resp.GetSeq()]
	if !ok {
		return
	}
	delete(l.flights, a.resp.GetSeq())
	l.reauth, l.broke = nil, nil // the stream and its credential hold
	if !f.probe {
		l.reopenErr = 0 // a probe's answer says nothing of the stream's writes
	}
	now := time.Now()
	l.clock.observe(a.resp.GetServerTime(), now)
	if m := a.resp.GetMaxBatchBytes(); m > 0 {
		l.serverMax = int(min(m, math.MaxInt32)) // the server's cap is at most 1 GiB
	}
	if a.resp.GetServerTime() != 0 {
		// A server that tells its clock answers a probe (its guard
		// refuses a batch per batch, never by ending the stream): the
		// next stream probes again, else its first batches went
		// unbounded for good after one older server denied a probe.
		l.unprobed = false
	}
	if refusedUnstamped(a.resp) {
		// Counted from when the sender took the batch, where its bound
		// counts from: from the queueing, the time it waited behind the
		// bytes of the batches before it grew the window to its cap, and
		// every lost batch's fence with it.
		sent := f.sent
		if u := f.until.Load(); u != nil {
			sent = u.Add(-f.window)
		}
		l.window.answered(now.Sub(sent))
	} else {
		l.window.settled()
	}
	if f.probe {
		l.probed = true // a server that does not tell its clock: no bound
	}
	var again []*pending
	for i, w := range f.writes {
		delete(l.busy, w.key)
		e := a.resp.GetError()
		var r *wailv1.WriteResult
		if e == nil {
			if i >= len(a.resp.GetResults()) {
				e = &wailv1.Error{Code: connect.CodeInternal.String(), Message: "the server answered fewer results than mutations"}
			} else {
				r = a.resp.GetResults()[i]
				e = r.GetError()
			}
		}
		if e == nil {
			l.finish(w, Result{Version: r.GetVersion(), Superseded: r.GetSuperseded(), Unlogged: !r.GetIntentLogged()}, nil)
			continue
		}
		werr := &WriteError{Message: e.GetMessage(), Version: r.GetVersion(), IntentLogged: r.GetIntentLogged()}
		_ = werr.Code.UnmarshalText([]byte(e.GetCode()))
		after := time.Duration(e.GetRetryAfterMs()) * time.Millisecond
		if after > 0 && werr.Code == connect.CodeResourceExhausted {
			// Over a quota, or the table overloaded: the server would
			// refuse the table's writes until then, so none goes (those
			// in flight get their answers). Other tables' writes go on: a
			// quota refusal pauses each of them at its first refusal.
			if l.paused == nil {
				l.paused = make(map[string]time.Time)
			}
			t := w.m.GetTable()
			l.paused[t] = maxTime(l.paused[t], time.Now().Add(after))
		}
		if !retriable(werr.Code) || w.answered {
			l.finish(w, Result{}, werr)
			continue
		}
		w.lastErr = werr
		if werr.Version != 0 {
			w.stamped = werr
		}
		wait := backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, w.tries)
		w.notBefore = time.Now().Add(max(wait, after))
		again = append(again, w)
	}
	l.requeue(again)
}

// refusedUnstamped: the answer refuses a write unavailable before its
// stamp (its stamp_before passed, or the server's stamp bound): the
// window must cover the time that batch took. A batch written, however
// slow its answer (a slow intent log or store write, after the stamp),
// says nothing of it: counted, it grew the window, and the fence of a
// lost batch's keys with it, past their writes' delivery timeout.
func refusedUnstamped(resp *wailv1.WriteStreamResponse) bool {
	unavailable := connect.CodeUnavailable.String()
	if e := resp.GetError(); e != nil {
		return e.GetCode() == unavailable
	}
	for _, r := range resp.GetResults() {
		if r.GetError().GetCode() == unavailable && r.GetVersion() == 0 {
			return true
		}
	}
	return false
}

// finish gives Write its outcome, once (a write that failed at its
// delivery timeout in flight keeps that).
func (l *loop) finish(w *pending, r Result, err error) {
	if w.answered {
		return
	}
	w.answered = true
	var werr *WriteError
	also := "" // an attempt lost with a stream may have been written too
	if w.lost {
		also = "; " + lostAttempt
	}
	switch {
	case w.stamped != nil && errors.Is(err, ErrClosed):
		// Close gave up on it; an earlier attempt was stamped and may have
		// been written: say so, with its version.
		err = &WriteError{Code: connect.CodeCanceled, Version: w.stamped.Version, IntentLogged: w.stamped.IntentLogged, cause: ErrClosed,
			Message: fmt.Sprintf("producer closed before the write was answered (an earlier attempt was stamped at version %d and failed with %s: %s; it may have been written, and then its event follows%s)",
				w.stamped.Version, w.stamped.Code, w.stamped.Message, also)}
	case w.stamped != nil && errors.As(err, &werr) && werr.Version == 0:
		// The last attempt says nothing of a version; an earlier one was
		// stamped and may have been written: say so, with its version, so
		// that the caller can match the event that may follow.
		err = &WriteError{Code: werr.Code, Version: w.stamped.Version, IntentLogged: w.stamped.IntentLogged,
			Message: fmt.Sprintf("%s (an earlier attempt was stamped at version %d and failed with %s: %s; it may have been written, and then its event follows%s)",
				werr.Message, w.stamped.Version, w.stamped.Code, w.stamped.Message, also)}
	case w.lost && errors.Is(err, ErrClosed):
		err = &WriteError{Code: connect.CodeCanceled, cause: ErrClosed, Message: "producer closed before the write was answered (" + lostAttempt + ")"}
	case w.lost && errors.As(err, &werr) && werr.Version != 0:
		err = &WriteError{Code: werr.Code, Version: werr.Version, IntentLogged: werr.IntentLogged, cause: werr.cause,
			Message: werr.Message + " (" + lostAttempt + ")"}
	case w.lost && errors.As(err, &werr) && werr.Version == 0:
		// Not "nothing written": the attempt lost with the stream may
		// have been.
		err = &WriteError{Code: werr.Code, IntentLogged: werr.IntentLogged, cause: werr.cause, Message: werr.Message + " (" + lostAttempt + ")"}
	}
	w.result <- outcome{r: r, err: err}
	<-l.p.space
	l.p.bytes.Release(w.held)
}

// lostAttempt says what an attempt lost with a broken stream may have done.
const lostAttempt = "an earlier attempt was lost with a broken write stream before its answer: it may have been written, " +
	"at a version not known, and then its event follows"

// retriable codes: the write was refused unwritten, or its store write's
// outcome is unknown (then the retry is a new write with a higher version).
func retriable(c connect.Code) bool {
	switch c {
	case connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeAborted, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

// backoff is the wait before try n+1 (n >= 1): base doubled per try, at
// most limit.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
