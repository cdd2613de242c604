package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// quotaServer is a ProducerService that refuses key "k0" the first time,
// resource_exhausted with retry_after_ms, as a server whose quota ran out
// refuses a batch's writes, and stores every other write; it records when
// each batch arrived and when it sent the refusal.
type quotaServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	retryAfterMs int64

	mu       sync.Mutex
	version  uint64
	refused  time.Time   // when the refusal was sent (just before)
	arrivals []time.Time // per batch
}

func (s *quotaServer) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		s.mu.Lock()
		s.arrivals = append(s.arrivals, time.Now())
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for _, m := range req.Mutations {
			if string(m.Key) == "k0" && s.refused.IsZero() {
				s.refused = time.Now()
				out.Results = append(out.Results, &wailv1.WriteResult{Error: &wailv1.Error{
					Code: connect.CodeResourceExhausted.String(), Message: "over quota", RetryAfterMs: s.retryAfterMs}})
				continue
			}
			s.version++
			out.Results = append(out.Results, &wailv1.WriteResult{Version: s.version, IntentLogged: true, Stored: true})
		}
		s.mu.Unlock()
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// batches returns when the batches arrived and when the refusal was sent.
func (s *quotaServer) batches() ([]time.Time, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrivals...), s.refused
}

// refuseFirst has the server refuse k0 and answer kx in one batch (two
// writes fill it), and returns the outcome of k0's write; once kx's write
// returned, the producer took the refusal.
func refuseFirst(t *testing.T, p *Producer) chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k0"), nil); first <- err }()
	if _, err := p.Put(context.Background(), "t", []byte("kx"), nil); err != nil {
		t.Fatalf("the write answered beside the refusal: %v", err)
	}
	return first
}

// TestProducerPausesOnRetryAfter: a write refused resource_exhausted with
// retry_after_ms stops the producer from sending any batch until the wait
// passed, not only that write: writes made meanwhile wait, then every
// write is delivered.
func TestProducerPausesOnRetryAfter(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	s := &quotaServer{retryAfterMs: wait.Milliseconds()}
	// Two writes fill a batch, so a batch is due as soon as they are
	// held: only the pause keeps one from going.
	p := serveHandler(t, s, ProducerConfig{Linger: time.Hour, BatchSize: 2, RetryBackoff: time.Millisecond}, time.Millisecond)
	first := refuseFirst(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for i := 1; i <= 9; i++ {
		wg.Go(func() {
			if _, err := p.Put(context.Background(), "t", fmt.Appendf(nil, "k%d", i), nil); err != nil {
				errs <- fmt.Errorf("k%d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a write made during the pause: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the refused write: %v", err)
	}
	arrivals, refused := s.batches()
	if len(arrivals) < 2 {
		t.Fatalf("%d batches", len(arrivals))
	}
	for i, at := range arrivals[1:] {
		if at.Before(refused.Add(wait)) {
			t.Fatalf("batch %d arrived %s after the refusal, within its retry_after_ms (%s): the producer did not pause",
				i+2, at.Sub(refused).Round(time.Millisecond), wait)
		}
	}
}

// TestProducerCloseDuringPause: during a pause asked for by the server,
// Close returns when its context ends (the writes held fail with
// ErrClosed, unsent) and a Write returns when its context ends.
func TestProducerCloseDuringPause(t *testing.T) {
	t.Parallel()
	s := &quotaServer{retryAfterMs: (10 * time.Minute).Milliseconds()}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Hour, BatchSize: 2, RetryBackoff: time.Millisecond}, time.Millisecond)
	first := refuseFirst(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Put(ctx, "t", []byte("k1"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write during the pause, its context ended: %v; want its context's error", err)
	}

	second := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k2"), nil); second <- err }()
	for len(p.space) < 3 { // k0, k1 (left without a waiter) and k2 are held
		time.Sleep(time.Millisecond)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelClose()
	closed := make(chan error, 1)
	go func() { closed <- p.Close(closeCtx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close during a pause of 10 minutes: %v; want its context's error (nothing may be sent)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	for _, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, ErrClosed) {
			t.Fatalf("a write held when Close gave up: %v; want ErrClosed", err)
		}
	}
	if arrivals, _ := s.batches(); len(arrivals) != 1 {
		t.Fatalf("%d batches sent; want 1 (the one refused)", len(arrivals))
	}
}

// TestProducerPauseIsPerTable: a retry_after_ms refusal pauses the writes
// of the refused write's table only (a table over proxy.max_backlog must
// not hold back the others; a quota refusal refuses every table's writes,
// and each is paused at its first refusal): another table's writes go on
// at once, the paused table's wait.
func TestProducerPauseIsPerTable(t *testing.T) {
	t.Parallel()
	s := &quotaServer{retryAfterMs: (10 * time.Minute).Milliseconds()}
	// Only full batches go (Linger an hour): refuseFirst's two writes go
	// together, so the pause is known once its write is answered.
	p := serveHandler(t, s, ProducerConfig{Linger: time.Hour, BatchSize: 2, RetryBackoff: time.Millisecond}, time.Millisecond)
	_ = refuseFirst(t, p) // k0 of table t refused, held for 10 minutes

	held := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k2"), nil); held <- err }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var other sync.WaitGroup
	for _, k := range []string{"k1", "k3"} { // a full batch of the other table
		other.Go(func() {
			if _, err := p.Put(ctx, "other", []byte(k), nil); err != nil {
				t.Errorf("a write to another table while table t is paused: %v; want it written at once", err)
			}
		})
	}
	other.Wait()
	select {
	case err := <-held:
		t.Fatalf("a write to the paused table returned during the pause: %v", err)
	default:
	}
	arrivals, _ := s.batches()
	if len(arrivals) != 2 {
		t.Fatalf("%d batches; want 2 (the refused one, then the other table's)", len(arrivals))
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelClose()
	_ = p.Close(closeCtx)
}
