package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// slowServer is a ProducerService whose WriteStream answers each batch in
// its own goroutine once hold(n) returns for it (n counts batches from
// 1), so that batches overlap as on a real server, and records, for each
// batch, its size and how many batches were unanswered when it arrived.
type slowServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	hold   func(n int)
	refuse func(n int) bool // refuse batch n with resource_exhausted
	// arrived receives each batch's number as it arrives, if set.
	arrived chan int

	mu      sync.Mutex
	version uint64
	open    int
	batches []slowBatch
}

type slowBatch struct {
	size        int
	overlapping int // batches unanswered when it arrived
	keys        []string
}

func (s *slowServer) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	var wg sync.WaitGroup
	var sendMu sync.Mutex
	defer wg.Wait()
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		b := slowBatch{size: len(req.Mutations)}
		for _, m := range req.Mutations {
			b.keys = append(b.keys, string(m.Key))
		}
		s.mu.Lock()
		b.overlapping = s.open
		s.batches = append(s.batches, b)
		n := len(s.batches)
		s.open++
		s.mu.Unlock()
		if s.arrived != nil {
			s.arrived <- n
		}
		wg.Go(func() {
			if s.hold != nil {
				s.hold(n)
			}
			out := &wailv1.WriteStreamResponse{Seq: req.Seq}
			s.mu.Lock()
			if s.refuse != nil && s.refuse(n) {
				out.Error = &wailv1.Error{Code: connect.CodeResourceExhausted.String(), Message: "busy", RetryAfterMs: 1}
			} else {
				for range req.Mutations {
					s.version++
					out.Results = append(out.Results, &wailv1.WriteResult{Version: s.version, IntentLogged: true, Stored: true})
				}
			}
			s.open-- // before the answer leaves: the client sees no fewer open
			s.mu.Unlock()
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = st.Send(out)
		})
	}
}

func (s *slowServer) seen() []slowBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

// TestProducerBatchNotFullWaitsForAnswer: a batch not full is sent only
// when no batch is in flight (so under load writes gather into few large
// batches); full batches still go several at a time. Whatever the server
// does, every write is answered. (A batch in flight longer than
// holdBehind lets one not full go: Linger 50 ms makes that 500 ms, which
// no batch here takes, even on a loaded machine.)
func TestProducerBatchNotFullWaitsForAnswer(t *testing.T) {
	t.Parallel()
	const batchSize = 30
	for _, tc := range []struct {
		name   string
		hold   func(int)
		refuse func(int) bool
	}{
		{name: "fast server"},
		{name: "slow server", hold: func(int) { time.Sleep(10 * time.Millisecond) }},
		{name: "refused batches", hold: func(int) { time.Sleep(time.Millisecond) }, refuse: func(n int) bool { return n%3 == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &slowServer{hold: tc.hold, refuse: tc.refuse}
			p := serveHandler(t, s, ProducerConfig{Linger: 50 * time.Millisecond, BatchSize: batchSize, RetryBackoff: time.Millisecond}, time.Millisecond)
			writers, keys, rounds := 100, 3, 3
			writeAll(t, p, writers, keys, rounds)
			written := 0
			for i, b := range s.seen() {
				if b.size < batchSize && b.overlapping > 0 {
					t.Fatalf("batch %d of %d writes (not full) was sent while %d other(s) were in flight", i+1, b.size, b.overlapping)
				}
				written += b.size
			}
			if want := writers * keys * rounds; written < want {
				t.Fatalf("the server saw %d writes, want at least %d", written, want)
			}
		})
	}
}

// TestProducerBehindABatchInFlight: a write that waits behind a batch the
// server does not answer goes after holdBehind, not at once and not never
// (it failed unsent at its delivery timeout); Close
// sends what waits at once, even with a batch in flight, and if it gives
// up the writes in flight fail with ErrClosed.
func TestProducerBehindABatchInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the delivery timeout
		// then runs after write "a" is in flight, held by the server
		// until release is closed.
		then func(t *testing.T, p *Producer, s *slowServer, a <-chan error, release chan struct{})
	}{
		{name: "a write behind goes after holdBehind", timeout: 300 * time.Millisecond, then: func(t *testing.T, p *Producer, s *slowServer, _ <-chan error, _ chan struct{}) {
			start := time.Now()
			if _, err := p.Put(context.Background(), "t", []byte("b"), nil); err != nil {
				t.Fatalf("a write behind a batch never answered: %v; want it sent after holdBehind and answered", err)
			}
			if waited := time.Since(start); waited < minHoldBehind {
				t.Fatalf("the write behind went after %s, before holdBehind (%s): it did not wait for the batch in flight", waited, minHoldBehind)
			}
			if n := len(s.seen()); n != 2 {
				t.Fatalf("the server saw %d batches; want 2", n)
			}
		}},
		{name: "close mid-flight sends what waits", timeout: time.Minute, then: func(t *testing.T, p *Producer, s *slowServer, a <-chan error, release chan struct{}) {
			errs := make(chan error, 10)
			for i := range 10 {
				go func() { _, err := p.Put(context.Background(), "t", fmt.Appendf(nil, "w%d", i), nil); errs <- err }()
			}
			for len(p.space) < 11 {
				time.Sleep(time.Millisecond) // all ten are held
			}
			closed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				closed <- p.Close(ctx)
			}()
			for n := range s.arrived {
				if n >= 2 {
					break // the waiting writes were sent, "a" still unanswered
				}
			}
			release <- struct{}{}
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := <-a; err != nil {
				t.Fatalf("the write in flight: %v", err)
			}
			for range 10 {
				if err := <-errs; err != nil {
					t.Fatalf("a write that waited: %v", err)
				}
			}
			for i, b := range s.seen()[1:] {
				if b.overlapping == 0 {
					t.Fatalf("batch %d went after the answer to the first: Close did not send it at once", i+2)
				}
			}
		}},
		{name: "close gives up", timeout: time.Minute, then: func(t *testing.T, p *Producer, _ *slowServer, a <-chan error, _ chan struct{}) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Close with a batch never answered: %v", err)
			}
			if err := <-a; !errors.Is(err, ErrClosed) {
				t.Fatalf("the write in flight after Close gave up: %v; want ErrClosed", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			s := &slowServer{arrived: make(chan int, 100), hold: func(n int) {
				if n == 1 {
					<-release
				}
			}}
			p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: tc.timeout}, time.Millisecond)
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
			a := make(chan error, 1)
			go func() { _, err := p.Put(context.Background(), "t", []byte("a"), nil); a <- err }()
			<-s.arrived
			tc.then(t, p, s, a, release)
		})
	}
}

// TestProducerCloseWhileWriting: writes that race with Close are either
// answered or fail with ErrClosed; none is left waiting (a write handed
// over just before Close is sent, whichever the loop sees first).
func TestProducerCloseWhileWriting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hold  func(int)
		close time.Duration // Close's patience
	}{
		{name: "answered", close: 10 * time.Second},
		{name: "slow server, Close gives up", hold: func(int) { time.Sleep(20 * time.Millisecond) }, close: time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &slowServer{hold: tc.hold}
			p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond}, time.Millisecond)
			errs := make(chan error, 50)
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					for n := 0; ; n++ { // until closed
						if _, err := p.Put(context.Background(), "t", fmt.Appendf(nil, "w%d-%d", i, n), nil); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			for len(s.seen()) < 3 {
				time.Sleep(time.Millisecond) // writing in full swing
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.close)
			defer cancel()
			_ = p.Close(ctx)
			wg.Wait()
			close(errs)
			for err := range errs {
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("a write that raced with Close: %v", err)
				}
			}
		})
	}
}
