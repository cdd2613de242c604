package client

import (
	"context"
	"slices"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// The producer's loop owns all its state; Write hands it writes on in,
// the stream's receiver hands it answers.

type flight struct {
	writes []*pending
}

type answer struct {
	gen  int
	resp *wailv1.WriteStreamResponse
	err  error
}

type loop struct {
	p       *Producer
	ctx     context.Context
	queue   []*pending // not in flight, in arrival order
	flights map[uint64]*flight
	busy    map[string]bool      // keys in a batch in flight
	fence   map[string]time.Time // keys lost with a broken stream: not sent before
	seq     uint64
	arrived uint64

	stream    *streamConn
	gen       int
	answers   chan answer
	reopenAt  time.Time // no new stream before
	reopenErr int       // consecutive failed streams
	timer     *time.Timer
}

// streamConn is one open WriteStream.
type streamConn struct {
	gen int
	s   interface {
		Send(*wailv1.WriteStreamRequest) error
		CloseRequest() error
		CloseResponse() error
	}
	cancel context.CancelFunc
}

func (p *Producer) run() {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &loop{p: p, ctx: ctx, flights: map[uint64]*flight{}, busy: map[string]bool{}, fence: map[string]time.Time{},
		answers: make(chan answer, p.cfg.MaxInFlight+1), timer: time.NewTimer(time.Hour)}
	defer l.timer.Stop()
	in, stop := p.in, p.stop
	for {
		closing := in == nil
		if closing && len(l.queue) == 0 && len(l.flights) == 0 {
			l.closeStream()
			return
		}
		wake := l.pump(closing)
		l.timer.Reset(max(time.Until(wake), 0))
		select {
		case w := <-in:
			l.arrived++
			w.n = l.arrived
			l.queue = append(l.queue, w)
		case a := <-l.answers:
			l.answer(a)
		case <-l.timer.C:
		case <-stop:
			in, stop = nil, nil // send what is held, take nothing more
		case <-p.abort:
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

// pump sends the batches that are due and returns when to look again.
func (l *loop) pump(closing bool) time.Time {
	now := time.Now()
	wake := now.Add(time.Hour)
	for len(l.flights) < l.p.cfg.MaxInFlight {
		batch, next := l.take(now, closing)
		wake = minTime(wake, next)
		if len(batch) == 0 {
			break
		}
		if !l.send(batch, now) {
			wake = minTime(wake, l.reopenAt)
			break
		}
	}
	return wake
}

// take removes from the queue the next batch to send, if one is due (full,
// lingered long enough, or closing), and says when to look again
// otherwise. A key goes in at most one batch in flight, once: later
// writes of it wait, and so do writes past a backoff or a fence.
func (l *loop) take(now time.Time, closing bool) (batch []*pending, next time.Time) {
	l.expire(now)
	next = now.Add(time.Hour)
	for _, w := range l.queue {
		next = minTime(next, w.deadline.Add(time.Millisecond)) // to fail it in time
	}
	size := l.p.cfg.BatchSize
	held := map[string]bool{}
	pick := map[*pending]bool{}
	var first time.Time
	for _, w := range l.queue {
		if l.busy[w.key] || held[w.key] {
			held[w.key] = true
			continue
		}
		held[w.key] = true // one write of a key per batch
		at := w.notBefore
		if f, ok := l.fence[w.key]; ok {
			if !now.Before(f) {
				delete(l.fence, w.key)
			} else {
				at = maxTime(at, f)
			}
		}
		if now.Before(at) {
			next = minTime(next, at)
			continue
		}
		if len(pick) == 0 {
			first = w.at
		}
		pick[w] = true
		if len(pick) == size {
			break
		}
	}
	if len(pick) == 0 {
		return nil, next
	}
	if due := first.Add(l.p.cfg.Linger); len(pick) < size && !closing && now.Before(due) {
		return nil, minTime(next, due)
	}
	rest := l.queue[:0]
	for _, w := range l.queue {
		if pick[w] {
			batch = append(batch, w)
		} else {
			rest = append(rest, w)
		}
	}
	clear(l.queue[len(rest):])
	l.queue = rest
	return batch, now
}

// expire fails the queued writes past their delivery timeout.
func (l *loop) expire(now time.Time) {
	l.queue = slices.DeleteFunc(l.queue, func(w *pending) bool {
		if !now.After(w.deadline) {
			return false
		}
		err := w.lastErr
		if err == nil {
			err = &WriteError{Code: connect.CodeDeadlineExceeded, Message: "not written within the producer's delivery timeout"}
		}
		l.finish(w, Result{}, err)
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
	l.seq++
	req := &wailv1.WriteStreamRequest{Seq: l.seq, Mutations: make([]*wailv1.Mutation, len(batch))}
	for i, w := range batch {
		req.Mutations[i] = w.m
		l.busy[w.key] = true
		w.tries++
	}
	l.flights[l.seq] = &flight{writes: batch}
	if err := l.stream.s.Send(req); err != nil {
		l.broken(err) // the batch is in flights: it is fenced and requeued with the others
		return false
	}
	return true
}

// open opens a stream unless a reopen backoff runs.
func (l *loop) open(now time.Time) bool {
	if now.Before(l.reopenAt) {
		return false
	}
	l.gen++
	ctx, cancel := context.WithCancel(l.ctx)
	s := l.p.client.WriteStream(ctx)
	l.stream = &streamConn{gen: l.gen, s: s, cancel: cancel}
	gen := l.gen
	go func() {
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
		l.stream.cancel() // the receiver stops first
		_ = l.stream.s.CloseRequest()
		_ = l.stream.s.CloseResponse()
		l.stream = nil
	}
}

// broken handles a stream that failed: every write in flight may or may
// not have been written, so it and every later write of its key wait
// FenceAfterBreak, then go again.
func (l *loop) broken(err error) {
	l.closeStream()
	if code := connect.CodeOf(err); code == connect.CodeUnimplemented || code == connect.CodeUnauthenticated || code == connect.CodePermissionDenied {
		// Retrying cannot help: fail what is held. Nothing in flight was
		// written (the stream was refused), so no fence.
		werr := &WriteError{Code: code, Message: "the server refused the write stream (a server without WriteStream, or not over HTTP/2, or not allowed): " + err.Error()}
		for seq, f := range l.flights {
			for _, w := range f.writes {
				delete(l.busy, w.key)
				l.finish(w, Result{}, werr)
			}
			delete(l.flights, seq)
		}
		for _, w := range l.queue {
			l.finish(w, Result{}, werr)
		}
		l.queue = nil
		return
	}
	l.reopenErr++
	l.reopenAt = time.Now().Add(backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, l.reopenErr))
	fence := time.Now().Add(l.p.fence)
	var lost []*pending
	for seq, f := range l.flights {
		for _, w := range f.writes {
			delete(l.busy, w.key)
			l.fence[w.key] = fence
			w.lastErr = &WriteError{Code: connect.CodeOf(err), Message: "the write stream broke before the answer: " + err.Error()}
		}
		lost = append(lost, f.writes...)
		delete(l.flights, seq)
	}
	l.requeue(lost)
}

// requeue puts writes back ahead of the queue, in arrival order: every
// write of their keys in the queue arrived after them.
func (l *loop) requeue(ws []*pending) {
	slices.SortFunc(ws, func(a, b *pending) int { return int(a.n) - int(b.n) })
	l.queue = append(ws, l.queue...)
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
	l.reopenErr = 0
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
			l.finish(w, Result{Version: r.GetVersion(), Superseded: r.GetSuperseded()}, nil)
			continue
		}
		werr := &WriteError{Message: e.GetMessage(), Version: r.GetVersion(), IntentLogged: r.GetIntentLogged()}
		_ = werr.Code.UnmarshalText([]byte(e.GetCode()))
		if !retriable(werr.Code) {
			l.finish(w, Result{}, werr)
			continue
		}
		w.lastErr = werr
		wait := backoff(l.p.cfg.RetryBackoff, l.p.cfg.RetryBackoffMax, w.tries)
		wait = max(wait, time.Duration(e.GetRetryAfterMs())*time.Millisecond)
		w.notBefore = time.Now().Add(wait)
		again = append(again, w)
	}
	l.requeue(again)
}

func (l *loop) finish(w *pending, r Result, err error) {
	w.result <- outcome{r: r, err: err}
	<-l.p.space
}

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
