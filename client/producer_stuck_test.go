package client

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// stuckFirst reads the batches of its first stream and never answers
// them (a stuck handler, on a connection that still answers HTTP/2
// pings); its later streams answer every batch.
type stuckFirst struct {
	wailv1connect.UnimplementedProducerServiceHandler
	streams atomic.Int32
	version atomic.Uint64
}

func (s *stuckFirst) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	first := s.streams.Add(1) == 1
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		if first {
			continue
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for range req.Mutations {
			out.Results = append(out.Results, &wailv1.WriteResult{Version: s.version.Add(1), Stored: true, IntentLogged: true})
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestProducerGivesUpStuckStream: a batch that gets no answer within the
// delivery timeout fails its writes (deadline_exceeded), and twice the
// delivery timeout after it was sent its stream is given up as a broken
// one: the writes after it go on a new stream. (The unanswered batch held
// its in-flight slot for good: with MaxInFlight such batches every later
// write, of any key, failed at its delivery timeout, until the process
// restarted.)
func TestProducerGivesUpStuckStream(t *testing.T) {
	t.Parallel()
	s := &stuckFirst{}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, MaxInFlight: 1, RetryBackoff: time.Millisecond,
		DeliveryTimeout: 500 * time.Millisecond}, 50*time.Millisecond)
	ctx := context.Background()
	var werr *WriteError
	if _, err := p.Put(ctx, "t", []byte("a"), nil); !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
		t.Fatalf("the write of the stuck stream: %v; want deadline_exceeded", err)
	}
	// The stream is given up a second after the batch was sent (twice
	// the delivery timeout); a write made before that waits behind it.
	time.Sleep(700 * time.Millisecond)
	for _, key := range []string{"b", "a"} { // a: after its fence
		if _, err := p.Put(ctx, "t", []byte(key), nil); err != nil {
			t.Fatalf("write of %s after the stuck stream: %v (streams opened: %d)", key, err, s.streams.Load())
		}
	}
	if n := s.streams.Load(); n != 2 {
		t.Fatalf("%d streams opened; want 2 (the stuck one, then one more)", n)
	}
}

// stampedOnce answers the first attempt of each write with an error after
// stamping it (version 77: its store write's outcome unknown, so it may
// have been written), and every later attempt with a refusal that wrote
// nothing.
type stampedOnce struct {
	wailv1connect.UnimplementedProducerServiceHandler
	tries atomic.Int32
}

func (s *stampedOnce) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for range req.Mutations {
			r := &wailv1.WriteResult{Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "refused: nothing was written"}}
			if s.tries.Add(1) == 1 {
				r = &wailv1.WriteResult{Version: 77, IntentLogged: true,
					Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "the store write's outcome is unknown"}}
			}
			out.Results = append(out.Results, r)
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestProducerErrorKeepsStampedAttempt: a write whose first attempt was
// stamped (and may have been written) and whose later attempts were
// refused unwritten fails with the stamped attempt's version, so that
// the caller can match the event that may follow; the last attempt's
// "nothing was written" alone would hide it.
//
// Its delivery timeout leaves the retries a second and more: with 300 ms
// a loaded machine can answer the first attempt too late for a second
// one, and the test fails ("1 attempts") though the producer is right.
func TestProducerErrorKeepsStampedAttempt(t *testing.T) {
	t.Parallel()
	s := &stampedOnce{}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond,
		DeliveryTimeout: 1500 * time.Millisecond}, time.Millisecond)
	_, err := p.Put(context.Background(), "t", []byte("k"), nil)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Version != 77 || !werr.IntentLogged || !strings.Contains(werr.Message, "version 77") {
		t.Fatalf("after a stamped attempt and refusals: %#v; want version 77, intent logged", err)
	}
	if n := s.tries.Load(); n < 2 {
		t.Fatalf("%d attempts; want the write retried", n)
	}
}

// stampedThenSilent answers the first attempt of a write with an error
// after stamping it (version 77), and never answers the later ones.
type stampedThenSilent struct {
	wailv1connect.UnimplementedProducerServiceHandler
	tries atomic.Int32
}

func (s *stampedThenSilent) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		if s.tries.Add(int32(len(req.Mutations))) > 1 {
			continue
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq, Results: []*wailv1.WriteResult{{Version: 77, IntentLogged: true,
			Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "the store write's outcome is unknown"}}}}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestProducerClosedKeepsStampedAttempt: a write whose first attempt was
// stamped (and may have been written) and whose retry is still unanswered
// when Close gives up fails with ErrClosed that carries the stamped
// attempt's version.
func TestProducerClosedKeepsStampedAttempt(t *testing.T) {
	t.Parallel()
	s := &stampedThenSilent{}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond,
		DeliveryTimeout: time.Minute}, time.Millisecond)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Put(context.Background(), "t", []byte("k"), nil)
		errc <- err
	}()
	for s.tries.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a write unanswered: %v; want it to give up", err)
	}
	err := <-errc
	var werr *WriteError
	if !errors.Is(err, ErrClosed) || !errors.As(err, &werr) || werr.Version != 77 || !werr.IntentLogged || !strings.Contains(werr.Message, "version 77") {
		t.Fatalf("a write Close gave up on after a stamped attempt: %#v; want ErrClosed with version 77", err)
	}
}
