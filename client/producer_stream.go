package client

// The producer's stream: opening it, probing it, and what a broken
// stream does to the flights it carried.

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// probing reports whether the stream's probe is in flight.
func (l *loop) probing() bool {
	for _, f := range l.flights {
		if f.probe {
			return true
		}
	}
	return false
}

// sendProbe sends a batch without writes on the stream; its answer tells
// the server's clock (server_time). It is a flight like any other: a
// stream that does not answer it is given up.
func (l *loop) sendProbe(now time.Time) {
	l.seq++
	f := &flight{deadline: firstDeadline(nil), stuck: now.Add(2 * l.p.cfg.DeliveryTimeout), sent: now, probe: true}
	l.flights[l.seq] = f
	select {
	case l.stream.reqs <- outgoing{req: &wailv1.WriteStreamRequest{Seq: l.seq}, f: f}:
	default: // cannot be: a new stream has nothing in flight
		l.broken(errors.New("the server answered batches not sent yet"))
	}
}

// open opens a stream unless a reopen backoff runs.
func (l *loop) open(now time.Time) bool {
	if now.Before(l.reopenAt) {
		return false
	}
	l.gen++
	l.clock, l.probed, l.serverMax = serverClock{}, false, 0 // another server, maybe
	if l.newConn && l.p.closeIdle != nil {
		l.p.closeIdle() // the old stream ended: its connection is idle
	}
	l.newConn = false
	ctx, cancel := context.WithCancel(l.ctx)
	s := l.p.client.WriteStream(ctx)
	reqs := make(chan outgoing, l.p.cfg.MaxInFlight)
	l.stream = &streamConn{gen: l.gen, reqs: reqs, cancel: cancel}
	gen := l.gen
	go func() {
		defer func() { _ = s.CloseRequest() }()
		for {
			select {
			case o := <-reqs:
				if o.f.bounded {
					// The bound counts from now: the server refuses to
					// stamp the batch once its clock passed its time now
					// plus the window. Stored before the check below: a
					// batch sent is fenced by it once the stream is given
					// up (closeStream cancels ctx before broken reads it).
					at := time.Now()
					o.req.StampBefore = o.clock.stampBefore(at, o.f.window)
					until := at.Add(o.f.window)
					o.f.until.Store(&until)
				}
				if ctx.Err() != nil {
					return // given up: its batches are fenced from now, unsent
				}
				err := s.Send(o.req)
				if err == nil {
					continue
				}
				if errors.Is(err, io.EOF) {
					return // the stream ended: the receiver gets why
				}
				select {
				case l.answers <- answer{gen: gen, err: err}:
				case <-ctx.Done():
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer func() { _ = s.CloseResponse() }()
		for {
			resp, err := s.Receive()
			select {
			case l.answers <- answer{gen: gen, resp: resp, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return true
}

func (l *loop) closeStream() {
	if l.stream != nil {
		l.stream.cancel() // the sender and the receiver stop and close their sides
		l.stream = nil
	}
}

// broken handles a stream that failed: every write in flight may or may
// not have been written, so it and every later write of its key wait
// until no attempt lost with the stream can be stamped any more (fenceOf),
// then go again.
func (l *loop) broken(err error) {
	probeDenied := connect.CodeOf(err) == connect.CodePermissionDenied && l.probing()
	l.closeStream()
	l.broke = err
	if connect.CodeOf(err) == connect.CodeUnauthenticated && l.reauth == nil {
		// A credential that expired during the stream (a client
		// certificate, renewed on disk maybe): the writes go once more,
		// on a new connection (newConn), whose handshake presents the
		// credential as it is now. The server ended the stream itself
		// after answering every batch it ran (below): the batches
		// unanswered were not run, so they go again without a fence.
		l.reauth, l.newConn = err, true
		var again []*pending
		for seq, f := range l.flights {
			for _, w := range f.writes {
				delete(l.busy, w.key)
				if !w.answered {
					again = append(again, w)
				}
			}
			delete(l.flights, seq)
		}
		l.requeue(again)
		l.reopenErr++
		l.reopenAt = time.Now().Add(backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, l.reopenErr))
		return
	}
	if code := connect.CodeOf(err); code == connect.CodeUnimplemented || code == connect.CodeUnauthenticated || code == connect.CodePermissionDenied {
		// Retrying cannot help: fail the writes in flight. The server
		// ended the stream itself, once every batch it read was done (it
		// runs each to its end), so no attempt can be stamped later: no
		// fence. Unimplemented or unauthenticated (on the stream the
		// writes went again on, reauth), every stream would be refused:
		// fail the queue too. Permission is checked per batch (the
		// tables it names): the queue goes on a new stream. (A server of
		// now answers such a batch per mutation instead and keeps the
		// stream: permission_denied fails only its writes.)
		l.newConn = code == connect.CodeUnauthenticated
		werr := &WriteError{Code: code, Message: "the server refused the write stream (a server without WriteStream, or not over HTTP/2, or not allowed): " + err.Error()}
		for seq, f := range l.flights {
			for _, w := range f.writes {
				delete(l.busy, w.key)
				l.finish(w, Result{}, werr)
			}
			delete(l.flights, seq)
		}
		if code == connect.CodePermissionDenied {
			l.unprobed = l.unprobed || probeDenied
			l.reopenErr++
			l.reopenAt = time.Now().Add(backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, l.reopenErr))
			return
		}
		for _, w := range l.queue {
			l.finish(w, Result{}, werr)
		}
		l.queue = nil
		clear(l.queued)
		return
	}
	l.reopenErr++
	wait := backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, l.reopenErr)
	if hint, ok := RetryDelay(err); ok {
		// Refused for now, saying when to come back (no write stream slot
		// free: api.max_write_streams[_per_client], while the server still
		// counts a stream that dropped): sooner, it would refuse again.
		wait = max(wait, min(hint, l.p.cfg.RetryBackoffMax))
	}
	l.reopenAt = time.Now().Add(wait)
	now := time.Now()
	for k, f := range l.fence {
		if !now.Before(f) {
			delete(l.fence, k) // else kept by a key no write came to again (its write failed meanwhile)
		}
	}
	// A write lost with the stream fails, at its delivery timeout, with
	// the break as its last error, under a code that says what it is: a
	// transient failure whose outcome is unknown. The transport's own code
	// says how the bytes ended (internal for a frame cut off by a server
	// killed mid-answer, unknown for a reset), not that the server erred.
	lostCode := connect.CodeOf(err)
	if !retriable(lostCode) {
		lostCode = connect.CodeUnavailable
	}
	var lost []*pending
	for seq, f := range l.flights {
		fence := l.fenceOf(f, now)
		unsent := f.bounded && f.until.Load() == nil // its sender never took it: nothing of it left
		for _, w := range f.writes {
			delete(l.busy, w.key)
			if unsent {
				continue
			}
			l.fence[w.key] = maxTime(l.fence[w.key], fence)
			w.lastErr = &WriteError{Code: lostCode, Message: "the write stream broke before the answer: " + err.Error()}
			w.lost = true
		}
		for _, w := range f.writes {
			if !w.answered { // else failed at its delivery timeout: only its key is fenced
				lost = append(lost, w)
			}
		}
		delete(l.flights, seq)
	}
	l.requeue(lost)
}

// fenceOf is when no attempt of f, lost with its stream at now, can be
// stamped any more: its stamp_before plus the margin the window leaves
// (counted from the send: the server refuses it then, however late the
// network delivers it), or, for a batch without one, FenceAfterBreak
// after the break (the server refuses it 5 s after reading it: that
// covers an attempt read before the break, not one the network delivers
// later).
func (l *loop) fenceOf(f *flight, now time.Time) time.Time {
	if !f.bounded {
		return now.Add(l.p.fence)
	}
	until := f.until.Load()
	if until == nil {
		return now // its sender never took it, and never sends it now: the stream is given up
	}
	return until.Add(l.p.fence - l.window.base)
}

// fencedUntil is when no attempt lost with a stream can be stamped any
// more; zero when that is now already.
func (l *loop) fencedUntil(now time.Time) time.Time {
	var until time.Time
	for _, f := range l.fence {
		until = maxTime(until, f)
	}
	if !until.After(now) {
		return time.Time{}
	}
	return until
}

// requeue puts writes back ahead of the queue, in arrival order: every
// write of their keys in the queue arrived after them.
func (l *loop) requeue(ws []*pending) {
	slices.SortFunc(ws, func(a, b *pending) int { return int(a.n) - int(b.n) })
	for _, w := range ws {
		l.queued[w.key]++
	}
	l.queue = append(ws, l.queue...)
}
