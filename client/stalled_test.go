package client

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// attempts is a ProducerService answering a one-write batch by the
// batch's number: fate(n) is "stamped" (unavailable, version 100*n: the
// store write's outcome unknown), "lost" (stored at version 100*n, then
// the stream ends unanswered) or "refused" (unavailable, no version).
type attempts struct {
	wailv1connect.UnimplementedProducerServiceHandler
	fate   func(n int) string
	mu     sync.Mutex
	n      int
	stored []uint64
}

func (s *attempts) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if answerProbe(st, req) {
			continue
		}
		s.mu.Lock()
		s.n++
		n := s.n
		s.mu.Unlock()
		v := uint64(100 * n)
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		switch s.fate(n) {
		case "stamped":
			out.Results = []*wailv1.WriteResult{{Version: v, IntentLogged: true,
				Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "store outcome unknown"}}}
		case "lost":
			s.mu.Lock()
			s.stored = append(s.stored, v)
			s.mu.Unlock()
			return connect.NewError(connect.CodeUnavailable, errors.New("scripted break"))
		default:
			out.Results = []*wailv1.WriteResult{{Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "nothing written"}}}
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestLostAndStamped: a write with one attempt stamped (outcome unknown)
// and one lost with a broken stream, whose last attempts are refused with
// no version, may have been written by either: the error names the
// stamped one (Version) and says the lost one may have been written too.
// Both attempts must come within the delivery timeout, a stream reopened
// between them: 2 s, not 500 ms, that a loaded machine can overrun.
func TestLostAndStamped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fates []string
	}{
		{"stamped then lost", []string{"stamped", "lost"}},
		{"lost then stamped", []string{"lost", "stamped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &attempts{fate: func(n int) string {
				if n <= len(tc.fates) {
					return tc.fates[n-1]
				}
				return "refused"
			}}
			p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond,
				RetryBackoffMax: 20 * time.Millisecond, DeliveryTimeout: 2 * time.Second}, time.Millisecond)
			_, err := p.Put(context.Background(), "t", []byte("k"), []byte("v"))
			s.mu.Lock()
			stored := append([]uint64(nil), s.stored...)
			s.mu.Unlock()
			var werr *WriteError
			if !errors.As(err, &werr) {
				t.Fatalf("err %v; want a WriteError", err)
			}
			t.Logf("stored at %v; the producer says: Version %d, %q", stored, werr.Version, werr.Message)
			if !strings.Contains(werr.Message, "lost with a broken write stream") {
				t.Fatalf("the attempt lost with the stream was stored at version %v, but the error names only the stamped attempt (Version %d) and not the lost one", stored, werr.Version)
			}
		})
	}
}

// stallTable is a ProducerService that answers a batch at once unless it
// holds a write of table "slow": that batch waits for release (a table
// whose intent log stalls; the batch is answered whole).
type stallTable struct {
	wailv1connect.UnimplementedProducerServiceHandler
	release chan struct{}
	mu      sync.Mutex
	batches int
}

func (s *stallTable) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
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
		s.mu.Lock()
		s.batches++
		s.mu.Unlock()
		wg.Go(func() {
			for _, m := range req.Mutations {
				if m.Table == "slow" {
					select {
					case <-s.release:
					case <-ctx.Done():
						return
					}
					break
				}
			}
			out := &wailv1.WriteStreamResponse{Seq: req.Seq}
			for range req.Mutations {
				out.Results = append(out.Results, &wailv1.WriteResult{Version: 1, IntentLogged: true, Stored: true})
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = st.Send(out)
		})
	}
}

// TestStalledTableBlocksNoOtherWrites: a table whose log stalls keeps
// being written (one write every 30 ms, each of a new key): once half the
// slots hold its batches unanswered past holdBehind, its writes wait for
// an answer instead of taking every slot, and a write of another table
// goes (TestSlowBatchHoldsNoOtherWrites covers a single slow batch).
func TestStalledTableBlocksNoOtherWrites(t *testing.T) {
	t.Parallel()
	s := &stallTable{release: make(chan struct{})}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: 3 * time.Second}, time.Millisecond)
	t.Cleanup(func() { close(s.release) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			go func() { _, _ = p.Put(ctx, "slow", []byte{byte(i), byte(i >> 8)}, nil) }()
			time.Sleep(30 * time.Millisecond)
		}
	}()
	time.Sleep(1500 * time.Millisecond) // past 8 holds
	start := time.Now()
	_, err := p.Put(context.Background(), "other", []byte("b"), nil)
	took := time.Since(start)
	s.mu.Lock()
	n := s.batches
	s.mu.Unlock()
	t.Logf("the write of table other: %v after %s (batches the server saw: %d)", err, took.Round(time.Millisecond), n)
	if err != nil || took > time.Second {
		t.Fatalf("a write of another table, behind a stalled table that keeps being written, waited %s: %v", took.Round(time.Millisecond), err)
	}
}
