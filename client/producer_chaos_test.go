package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// chaosServer is a ProducerService that fails at random in every way a
// server may: it breaks streams (their batches stored, not stored, or
// stored later, within stampLate), refuses writes unstamped, stamps them
// and fails them with an unknown outcome (stored or not), and pauses
// tables with retry_after_ms. It keeps every version stored per key.
type chaosServer struct {
	wailv1connect.UnimplementedProducerServiceHandler
	stampLate time.Duration

	mu      sync.Mutex
	rnd     *rand.Rand
	version uint64
	stored  map[string][]chaosStored
}

type chaosStored struct {
	version uint64
	value   int
}

func (s *chaosServer) store(m *wailv1.Mutation) uint64 {
	s.version++
	v, _ := strconv.Atoi(string(m.GetValue()))
	k := string(m.GetKey())
	s.stored[k] = append(s.stored[k], chaosStored{version: s.version, value: v})
	return s.version
}

func (s *chaosServer) WriteStream(_ context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
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
		switch s.rnd.IntN(20) {
		case 0: // stored, the stream breaks unanswered
			for _, m := range req.Mutations {
				s.store(m)
			}
			s.mu.Unlock()
			return connect.NewError(connect.CodeUnavailable, errors.New("chaos: break after storing"))
		case 1: // not stored, the stream breaks
			s.mu.Unlock()
			return connect.NewError(connect.CodeUnavailable, errors.New("chaos: break before storing"))
		case 2: // the stream breaks, the batch is stored later
			late := time.Duration(s.rnd.Int64N(int64(s.stampLate)))
			s.mu.Unlock()
			muts := req.Mutations
			time.AfterFunc(late, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				for _, m := range muts {
					s.store(m)
				}
			})
			return connect.NewError(connect.CodeUnavailable, errors.New("chaos: break, stored later"))
		case 3: // the whole batch refused unwritten
			s.mu.Unlock()
			if err := st.Send(&wailv1.WriteStreamResponse{Seq: req.Seq, Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "chaos: batch refused"}}); err != nil {
				return nil
			}
			continue
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		for _, m := range req.Mutations {
			var r *wailv1.WriteResult
			switch s.rnd.IntN(12) {
			case 0:
				r = &wailv1.WriteResult{Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "chaos: refused"}}
			case 1:
				r = &wailv1.WriteResult{Error: &wailv1.Error{Code: connect.CodeAborted.String(), Message: "chaos: aborted"}}
			case 2: // stamped, stored, outcome unknown to the server
				v := s.store(m)
				r = &wailv1.WriteResult{Version: v, Error: &wailv1.Error{Code: connect.CodeDeadlineExceeded.String(), Message: "chaos: stored, unknown"}}
			case 3: // stamped, not stored, outcome unknown
				s.version++
				r = &wailv1.WriteResult{Version: s.version, Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "chaos: stamped, not stored"}}
			case 4:
				r = &wailv1.WriteResult{Error: &wailv1.Error{Code: connect.CodeResourceExhausted.String(), Message: "chaos: over quota", RetryAfterMs: 3}}
			default:
				r = &wailv1.WriteResult{Version: s.store(m), Stored: true, IntentLogged: true}
			}
			out.Results = append(out.Results, r)
		}
		s.mu.Unlock()
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

// TestProducerChaos: against a server that fails in every way at random,
// every write of every key ends answered with a version (retried until
// then), the versions answered per key follow the writes' order, and no
// attempt of an earlier write is stored at a version above a later write
// that was answered: the newest version stored of each key is its last
// write's value.
func TestProducerChaos(t *testing.T) {
	t.Parallel()
	for seed := range uint64(2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			stampLate := 30 * time.Millisecond
			s := &chaosServer{stampLate: stampLate, rnd: rand.New(rand.NewPCG(seed, 1)), stored: map[string][]chaosStored{}}
			p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, BatchSize: 16, RetryBackoff: time.Millisecond,
				RetryBackoffMax: 5 * time.Millisecond, DeliveryTimeout: time.Minute}, 2*stampLate)
			const writers, keys, rounds = 8, 4, 30
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			answered := make([][]uint64, writers*keys) // per key, the version of each round
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for r := range rounds {
						for k := range keys {
							key := w*keys + k
							res, err := p.Put(ctx, "t", fmt.Appendf(nil, "%d", key), fmt.Appendf(nil, "%d", r))
							if err != nil {
								errs <- fmt.Errorf("key %d round %d: %w", key, r, err)
								return
							}
							answered[key] = append(answered[key], res.Version)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			time.Sleep(2 * stampLate) // every late store is in
			s.mu.Lock()
			defer s.mu.Unlock()
			for key, vs := range answered {
				for r := 1; r < len(vs); r++ {
					if vs[r] <= vs[r-1] {
						t.Fatalf("key %d: round %d answered version %d, round %d %d", key, r, vs[r], r-1, vs[r-1])
					}
				}
				for _, st := range s.stored[fmt.Sprint(key)] {
					for r := st.value + 1; r < len(vs); r++ {
						if st.version > vs[r] {
							t.Fatalf("key %d: an attempt of round %d was stored at version %d, over round %d's answered version %d",
								key, st.value, st.version, r, vs[r])
						}
					}
				}
			}
		})
	}
}
