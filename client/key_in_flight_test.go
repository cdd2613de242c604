package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// laggard is a ProducerService that reads batches ahead of its answers
// (each answered a few milliseconds after it was read, in order), so that
// the producer has several batches in flight, and records a key seen in
// two batches in flight at once, or twice in one batch, and the most
// batches it held unanswered at once.
type laggard struct {
	wailv1connect.UnimplementedProducerServiceHandler
	mu       sync.Mutex
	version  uint64
	inFlight map[string]bool
	problem  string
	batches  int // read and not answered
	most     int
}

func (s *laggard) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	type held struct {
		keys []string
		out  *wailv1.WriteStreamResponse
	}
	queue := make(chan held, 64)
	done := make(chan struct{})
	go func() { // the answerer
		defer close(done)
		for h := range queue {
			time.Sleep(3 * time.Millisecond)
			s.mu.Lock()
			for _, k := range h.keys {
				delete(s.inFlight, k)
			}
			s.batches--
			s.mu.Unlock()
			if st.Send(h.out) != nil {
				for range queue {
				}
				return
			}
		}
	}()
	defer func() { close(queue); <-done }()
	for {
		req, err := st.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		var keys []string
		s.mu.Lock()
		s.batches++
		s.most = max(s.most, s.batches)
		inBatch := map[string]bool{}
		for _, m := range req.Mutations {
			k := m.Table + "/" + string(m.Key)
			switch {
			case inBatch[k]:
				s.problem = fmt.Sprintf("key %s twice in one batch", k)
			case s.inFlight[k]:
				s.problem = fmt.Sprintf("key %s in two batches in flight at once", k)
			}
			inBatch[k], s.inFlight[k] = true, true
			keys = append(keys, k)
			s.version++
			out.Results = append(out.Results, &wailv1.WriteResult{Version: s.version, IntentLogged: true, Stored: true})
		}
		s.mu.Unlock()
		queue <- held{keys: keys, out: out}
	}
}

// TestProducerKeyInOneBatchInFlight: writes of one key made by many
// goroutines at once (each waiting for its own answer) go one at a time,
// a key in at most one batch in flight and once per batch (order:
// Producer), while the batches of other keys overlap (BatchSize 2: a full
// batch goes with others in flight, where one not full would wait for
// their answers), at most MaxInFlight of them.
func TestProducerKeyInOneBatchInFlight(t *testing.T) {
	t.Parallel()
	s := &laggard{inFlight: map[string]bool{}}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, BatchSize: 2, MaxInFlight: 3}, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for g := range 24 {
		wg.Go(func() {
			for i := range 20 {
				key := "same"
				if g >= 8 { // keys of their own, to fill batches
					key = fmt.Sprintf("g%d-%d", g, i)
				}
				if _, err := p.Put(ctx, "t", []byte(key), []byte("v")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.problem != "" {
		t.Fatal(s.problem)
	}
	if s.most != 3 {
		t.Fatalf("at most %d batches in flight at once, want MaxInFlight (3)", s.most)
	}
}
