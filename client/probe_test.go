package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// breakingServer answers the probe, then ends the stream unavailable on
// the first real batch (a server that fails every stream once it writes).
type breakingServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	streams atomic.Int64
}

func (s *breakingServer) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	s.streams.Add(1)
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		return connect.NewError(connect.CodeUnavailable, errors.New("down"))
	}
}

// TestProbeAnswerKeepsReopenBackoff: a server that answers each new
// stream's probe and then fails the stream on its first batch: the probe's
// answer says nothing of the stream's writes, so the reopen backoff keeps
// growing. (With every answer resetting it, the producer opened a stream
// every few milliseconds.)
func TestProbeAnswerKeepsReopenBackoff(t *testing.T) {
	t.Parallel()
	s := &breakingServer{}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(s))
	srv := startH2C(t, mux)
	hc, err := Options{Addr: srv.Listener.Addr().String(), H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL), ProducerConfig{DeliveryTimeout: 3 * time.Second}, FenceAfterBreak)
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 600; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = p.Put(context.Background(), "tx", []byte(fmt.Sprint(i)), []byte("v"))
		}()
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	// Exponential backoff (50 ms doubling to 2 s) allows about 7 streams in 3 s.
	t.Logf("streams opened in 3 s: %d", s.streams.Load())
	if s.streams.Load() > 15 {
		t.Fatal("the reopen backoff never grows: every stream's probe is answered")
	}
}

// oldGuardServer is a server before 64bf26a (per-batch permission
// answers) with auth on and a token
// granted produce:tx: a batch naming no table (the probe) needs a grant on
// "*" and ends the stream permission_denied; a batch of tx is written.
type oldGuardServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	streams atomic.Int64
}

func (s *oldGuardServer) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	s.streams.Add(1)
	for {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if len(req.Mutations) == 0 {
			return connect.NewError(connect.CodePermissionDenied, errors.New(`token lacks the produce permission on table "*"`))
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for range req.Mutations {
			out.Results = append(out.Results, &wailv1.WriteResult{Version: 1, IntentLogged: true, Stored: true})
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestProbeDeniedByOlderServer: a server from before the probe, with auth
// on and a token granted one table, ends the stream permission_denied on
// the probe (a batch naming no table): the producer writes on, without a
// bound, instead of failing every write or reopening at once.
func TestProbeDeniedByOlderServer(t *testing.T) {
	t.Parallel()
	s := &oldGuardServer{}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(s))
	srv := startH2C(t, mux)
	hc, err := Options{Addr: srv.Listener.Addr().String(), H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL), ProducerConfig{DeliveryTimeout: 2 * time.Second}, FenceAfterBreak)
	defer p.Close(context.Background())
	start := time.Now()
	_, err = p.Put(context.Background(), "tx", []byte("k"), []byte("v"))
	t.Logf("Put after %s: %v; streams opened: %d", time.Since(start).Round(time.Millisecond), err, s.streams.Load())
	if err != nil || s.streams.Load() > 5 {
		t.Fatal("the producer cannot write to a server that denies the probe, and reopens streams without backoff")
	}
}
