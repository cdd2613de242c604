// Package readahead counts the bytes event streams (Subscribe, a
// Consume member's session, a webhook sink's) hold read ahead of their
// clients: events read from the log and not yet sent (a sink's: not yet
// delivered). Each stream holds at most its own
// budget (api.subscription_buffer_bytes); all of the process's streams
// together share a Pool (api.max_subscription_buffered_bytes).
package readahead

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Pool is the read-ahead of every stream of the process.
type Pool struct {
	max   int64 // 0: unbounded (counted only)
	used  atomic.Int64
	waits atomic.Int64
	drops atomic.Int64
}

// NewPool returns a pool of max bytes (0: unbounded, only counted).
func NewPool(max int64) *Pool { return &Pool{max: max} }

// Used is the bytes the streams hold.
func (p *Pool) Used() int64 { return p.used.Load() }

// Waits is how many times a stream's reader waited for its client
// because the pool was full.
func (p *Pool) Waits() int64 { return p.waits.Load() }

// Drops is how many batches streams' readers dropped because the pool
// was full and their streams held events (Take), to read them again
// once it has room.
func (p *Pool) Drops() int64 { return p.drops.Load() }

// Stream is one stream's read-ahead: at most max bytes (0: no bound of
// its own), and within its pool's. A batch is taken (Acquire) by a
// reader before it is queued and given back (Release) once the stream
// sent it.
type Stream struct {
	pool *Pool
	sem  *semaphore.Weighted
	max  int64

	held    atomic.Int64 // taken from the pool
	waiting atomic.Int32 // readers waiting for the stream to send
	mu      sync.Mutex
	sent    chan struct{} // closed at a Release with readers waiting
}

// Stream returns a stream's read-ahead of at most max bytes (0: no
// bound of its own) in p (nil: none). Both absent, it is nil: unbounded
// (a nil *Stream takes and gives nothing).
func (p *Pool) Stream(max int64) *Stream {
	if p == nil && max <= 0 {
		return nil
	}
	s := &Stream{pool: p, max: max}
	if max > 0 {
		s.sem = semaphore.NewWeighted(max)
	}
	return s
}

// Acquire waits until the stream may hold n more bytes (at least 1; a
// batch over the stream's max takes all of it) and returns how many it
// took, to Release once sent; it fails only with ctx's error.
func (s *Stream) Acquire(ctx context.Context, n int64) (int64, error) {
	if s == nil {
		return 0, nil
	}
	n = max(n, 1)
	if s.sem != nil {
		n = min(n, s.max)
		if err := s.sem.Acquire(ctx, n); err != nil {
			return 0, err
		}
	}
	if s.pool != nil {
		if err := s.take(ctx, n); err != nil {
			if s.sem != nil {
				s.sem.Release(n)
			}
			return 0, err
		}
	}
	return n, nil
}

// closedHeld is what Close sets a stream's held to: what it takes or
// gives back after is not counted (Close gave back what it held).
const closedHeld = math.MinInt64 / 2

// take takes n bytes of the pool: at once while the pool has room, or
// while the stream holds nothing (its one batch past the pool, so that
// a stream never waits for the others); else it waits for the stream's
// client to take what it holds.
func (s *Stream) take(ctx context.Context, n int64) error {
	p := s.pool
	counted := false
	for {
		ok, h := s.tryTake(n)
		if ok {
			return nil
		}
		ready := func() bool { return s.held.Load() != h || p.used.Load()+n <= p.max }
		if !counted {
			counted = true
			p.waits.Add(1)
		}
		if err := s.wait(ctx, ready); err != nil {
			return err
		}
	}
}

// tryTake takes n bytes of the pool if take would not wait; else it
// takes nothing and returns false with what the stream held.
func (s *Stream) tryTake(n int64) (bool, int64) {
	p := s.pool
	for {
		h := s.held.Load()
		switch {
		case h <= closedHeld/2:
			return true, h
		case h == 0:
			if !s.held.CompareAndSwap(0, n) {
				continue // another reader of the stream took first
			}
			p.used.Add(n)
			return true, h
		case p.max <= 0 || p.used.Add(n) <= p.max:
			if p.max <= 0 {
				p.used.Add(n)
			}
			if s.held.Add(n) <= closedHeld/2 {
				p.used.Add(-n) // closed meanwhile: Close did not count it
			}
			return true, h
		}
		p.used.Add(-n)
		return false, h
	}
}

// Take is Acquire for a reader that can read its batch again: when the
// pool is full and the stream holds events (where Acquire waits for the
// stream's client with the batch in hand), it takes nothing and returns
// false at once, and the reader drops the batch, waits for Room and
// reads it again. Past the pool a stream then holds no read waiting to
// be counted: the process holds the pool plus one batch per stream. The
// bytes taken are counted in the pool first, then within the stream's
// own budget, for which Take waits (its client is merely slower than the
// log: no read again); it fails only with ctx's error.
func (s *Stream) Take(ctx context.Context, n int64) (int64, bool, error) {
	if s == nil {
		return 0, true, nil
	}
	n = max(n, 1)
	if s.sem != nil {
		n = min(n, s.max)
	}
	if s.pool != nil {
		if ok, _ := s.tryTake(n); !ok {
			s.pool.drops.Add(1)
			return 0, false, nil
		}
	}
	if s.sem != nil {
		if err := s.sem.Acquire(ctx, n); err != nil {
			s.giveBack(n)
			return 0, false, err
		}
	}
	return n, true, nil
}

// Room returns once a Take of n bytes would take them (the pool has
// room for them, or the stream holds nothing, or is closed): a reader
// whose Take failed calls it before it reads its batch again. It fails
// only with ctx's error.
func (s *Stream) Room(ctx context.Context, n int64) error {
	if s == nil || s.pool == nil || s.pool.max <= 0 {
		return nil
	}
	n = max(n, 1)
	if s.sem != nil {
		n = min(n, s.max)
	}
	p := s.pool
	ready := func() bool { return s.held.Load() <= 0 || p.used.Load()+n <= p.max }
	for !ready() {
		if err := s.wait(ctx, ready); err != nil {
			return err
		}
	}
	return nil
}

// Wait returns once the stream may read more: its pool has room and the
// stream holds less than its own budget, or the stream holds nothing (or
// is closed). A reader calls it before reading its next batch, so that a
// stream whose client does not read reads no batch it could not take.
// It fails only with ctx's error.
func (s *Stream) Wait(ctx context.Context) error {
	if s == nil || s.pool == nil || s.pool.max <= 0 {
		return nil
	}
	p := s.pool
	ready := func() bool {
		h := s.held.Load()
		return h <= 0 || p.used.Load() < p.max && (s.max <= 0 || h < s.max)
	}
	if ready() {
		return nil
	}
	if p.used.Load() >= p.max {
		p.waits.Add(1) // not a wait for the stream's own budget
	}
	for !ready() {
		if err := s.wait(ctx, ready); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for the stream's next Release (or Close), unless ready
// already holds once the waiter is registered (a Release before it
// wakes no one).
func (s *Stream) wait(ctx context.Context, ready func() bool) error {
	s.mu.Lock()
	if s.sent == nil {
		s.sent = make(chan struct{})
	}
	ch := s.sent
	s.waiting.Add(1)
	s.mu.Unlock()
	defer s.waiting.Add(-1)
	if ready() {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back n bytes Acquire (or Take) took.
func (s *Stream) Release(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.giveBack(n)
	if s.sem != nil {
		s.sem.Release(n)
	}
}

// giveBack gives back to the pool n bytes the stream took of it.
func (s *Stream) giveBack(n int64) {
	if s.pool != nil {
		if s.held.Add(-n) > closedHeld/2 {
			s.pool.used.Add(-n)
		}
		s.wake()
	}
}

// Close gives back to the pool what the stream still holds (batches
// queued when it ended); what it takes or gives back after is not
// counted. Call it once the stream ended.
func (s *Stream) Close() {
	if s == nil || s.pool == nil {
		return
	}
	if h := s.held.Swap(closedHeld); h > closedHeld/2 {
		s.pool.used.Add(-h)
	}
	s.wake()
}

// wake wakes the stream's waiting readers.
func (s *Stream) wake() {
	if s.waiting.Load() == 0 {
		return
	}
	s.mu.Lock()
	if s.sent != nil {
		close(s.sent)
		s.sent = nil
	}
	s.mu.Unlock()
}
