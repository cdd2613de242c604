package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// slotServer is a ProducerService that refuses its first refused write
// streams resource_exhausted (with a RetryInfo hint unless hint is
// negative), as a server refuses a stream over api.max_write_streams,
// and stores every write on the next; it records when each stream came.
type slotServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	refused int
	hint    time.Duration

	mu    sync.Mutex
	opens []time.Time
}

func (s *slotServer) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	s.mu.Lock()
	s.opens = append(s.opens, time.Now())
	n := len(s.opens)
	s.mu.Unlock()
	if n <= s.refused {
		err := connect.NewError(connect.CodeResourceExhausted, errors.New("1 write streams are open, the most this server takes (api.max_write_streams); retry later"))
		if s.hint >= 0 {
			d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.hint)})
			if derr != nil {
				return derr
			}
			err.AddDetail(d)
		}
		return err
	}
	for v := uint64(1); ; v++ {
		req, err := st.Receive()
		if err != nil {
			return nil
		}
		if answerProbe(st, req) {
			continue
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for range req.Mutations {
			out.Results = append(out.Results, &wailv1.WriteResult{Version: v, IntentLogged: true, Stored: true})
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

func (s *slotServer) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.opens...)
}

// TestProducerStreamSlotRetryInfo: a write stream refused for want of a
// slot with a RetryInfo hint is opened again no sooner than the hint
// (at most RetryBackoffMax), not at the producer's own, shorter backoff
// that the server would refuse again; without the hint (an older
// server) it is opened again at the backoff, as before. Either way the
// writes are delivered once a stream opens.
func TestProducerStreamSlotRetryInfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		hint, max      time.Duration // hint < 0: no RetryInfo
		minGap, maxGap time.Duration
	}{
		{"hint honoured", 200 * time.Millisecond, 2 * time.Second, 200 * time.Millisecond, 2 * time.Second},
		{"hint above RetryBackoffMax", time.Hour, 50 * time.Millisecond, 0, 2 * time.Second},
		// At the backoff (5 then 10 ms), well short of RetryBackoffMax;
		// a loaded machine saw 155 ms with a bound of 150.
		{"no RetryInfo", -1, 2 * time.Second, 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &slotServer{refused: 2, hint: tc.hint}
			p := serveHandler(t, s, ProducerConfig{RetryBackoff: 5 * time.Millisecond, RetryBackoffMax: tc.max, DeliveryTimeout: 10 * time.Second}, time.Millisecond)
			if _, err := p.Put(context.Background(), "t", []byte("k"), []byte("v")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			opens := s.times()
			if len(opens) != 3 {
				t.Fatalf("%d streams opened, want 3", len(opens))
			}
			for i := 1; i < len(opens); i++ {
				if gap := opens[i].Sub(opens[i-1]); gap < tc.minGap || gap > tc.maxGap {
					t.Errorf("stream %d opened %s after the refusal, want %s..%s", i+1, gap, tc.minGap, tc.maxGap)
				}
			}
		})
	}
}
