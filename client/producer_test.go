package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// answerProbe answers a batch without writes (a producer's probe of a
// new stream, for server_time) as a server does, and reports whether
// req was one.
func answerProbe(st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse], req *wailv1.WriteStreamRequest) bool {
	if len(req.GetMutations()) > 0 {
		return false
	}
	_ = st.Send(&wailv1.WriteStreamResponse{Seq: req.GetSeq()})
	return true
}

// script is a ProducerService whose WriteStream stamps versions from a
// counter, checks that no key is in two batches in flight, and fails as
// the test says.
type script struct {
	wailv1connect.UnimplementedProducerServiceHandler
	mu       sync.Mutex
	version  uint64
	inFlight map[string]bool
	overlap  string // a key seen in two batches in flight at once
	batches  int
	stored   map[string][]uint64 // versions stored per key, in stamp order
	// fail, if set, decides the fate of a batch before it is stamped:
	// "break" ends the stream (after stamping and storing, unanswered),
	// "exhausted" refuses the batch with a retry hint, "" answers.
	fail func(batch int) string
	// failWrite, if set, fails single mutations with this code (retriable
	// codes leave them unstamped).
	failWrite func(key string, try int) string
	tries     map[string]int
	stampLate time.Duration // "break-late": stamped this long after the break
	late      int           // batches stamped late
}

func newScript() *script {
	return &script{inFlight: map[string]bool{}, stored: map[string][]uint64{}, tries: map[string]int{}}
}

func (s *script) WriteStream(ctx context.Context, st *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	for {
		req, err := st.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err // e.g. a message over the size cap, or refused by an interceptor
		}
		if answerProbe(st, req) {
			continue
		}
		s.mu.Lock()
		s.batches++
		n := s.batches
		fate := ""
		if s.fail != nil {
			fate = s.fail(n)
		}
		keys := make([]string, len(req.Mutations))
		for i, m := range req.Mutations {
			keys[i] = m.Table + "/" + string(m.Key)
			if s.inFlight[keys[i]] {
				s.overlap = keys[i]
			}
		}
		out := &wailv1.WriteStreamResponse{Seq: req.Seq}
		if fate == "break-late" {
			// The stream breaks at once, and the batch is stamped and
			// stored later, as a server may (within its stamp bound).
			s.mu.Unlock()
			time.AfterFunc(s.stampLate, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				for _, k := range keys {
					s.version++
					s.stored[k] = append(s.stored[k], s.version)
				}
				s.late++
			})
			return connect.NewError(connect.CodeUnavailable, errors.New("scripted break"))
		}
		if fate == "exhausted" {
			out.Error = &wailv1.Error{Code: connect.CodeResourceExhausted.String(), Message: "busy", RetryAfterMs: 30}
		} else {
			for _, k := range keys {
				s.tries[k]++
				code := ""
				if s.failWrite != nil {
					code = s.failWrite(k, s.tries[k])
				}
				if code != "" {
					out.Results = append(out.Results, &wailv1.WriteResult{Error: &wailv1.Error{Code: code, Message: "scripted"}})
					continue
				}
				s.version++
				s.stored[k] = append(s.stored[k], s.version)
				out.Results = append(out.Results, &wailv1.WriteResult{Version: s.version, IntentLogged: true, Stored: true})
			}
		}
		s.mu.Unlock()
		if fate == "break" {
			return connect.NewError(connect.CodeUnavailable, errors.New("scripted break"))
		}
		if err := st.Send(out); err != nil {
			return nil
		}
	}
}

func serveScript(t *testing.T, s *script, cfg ProducerConfig, fence time.Duration) *Producer {
	t.Helper()
	return serveHandler(t, s, cfg, fence)
}

func serveHandler(t *testing.T, s wailv1connect.ProducerServiceHandler, cfg ProducerConfig, fence time.Duration, opts ...connect.HandlerOption) *Producer {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(s, opts...))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Start()
	hc, err := Options{Addr: srv.URL, H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL), cfg, fence)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		hc.CloseIdleConnections()
		srv.Close()
	})
	return p
}

// writeAll runs writers goroutines that each write keys k0..k(keys-1) of
// table t in order, rounds times, and returns each answer by writer.
func writeAll(t *testing.T, p *Producer, writers, keys, rounds int) [][]Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([][]Result, writers)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				for k := range keys {
					res, err := p.Put(ctx, "t", fmt.Appendf(nil, "w%d-k%d", w, k), fmt.Appendf(nil, "%d", r))
					if err != nil {
						failed.Store(err)
						return
					}
					out[w] = append(out[w], res)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("a write failed: %v", err)
	}
	return out
}

// checkOrder: per key, the answers' versions increase in the order the
// writes were made, and the last version stored is the last one answered.
func checkOrder(t *testing.T, s *script, out [][]Result, keys int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlap != "" {
		t.Fatalf("key %s was in two batches in flight at once", s.overlap)
	}
	for w, rs := range out {
		last := map[int]uint64{}
		for i, r := range rs {
			k := i % keys
			if r.Version <= last[k] {
				t.Fatalf("writer %d key %d: version %d answered after %d", w, k, r.Version, last[k])
			}
			last[k] = r.Version
		}
		for k, v := range last {
			stored := s.stored[fmt.Sprintf("t/w%d-k%d", w, k)]
			if top := stored[len(stored)-1]; top != v {
				t.Fatalf("writer %d key %d: the newest stored version is %d, the last answered %d: an earlier attempt overwrote it", w, k, top, v)
			}
		}
	}
}

// TestProducerBatches: many writers that each wait for their answer end
// up in few, large batches; every write is answered once, in order per
// key.
func TestProducerBatches(t *testing.T) {
	t.Parallel()
	s := newScript()
	p := serveScript(t, s, ProducerConfig{Linger: 5 * time.Millisecond, BatchSize: 100}, time.Millisecond)
	out := writeAll(t, p, 50, 4, 5)
	checkOrder(t, s, out, 4)
	s.mu.Lock()
	defer s.mu.Unlock()
	if writes := 50 * 4 * 5; s.batches*5 > writes {
		t.Fatalf("%d writes took %d batches: not batched", writes, s.batches)
	}
	t.Logf("%d writes in %d batches", 50*4*5, s.batches)
}

// TestProducerRetries: refused batches, refused writes and broken streams
// are retried until every write is answered, and per key the versions
// still follow the order of the writes, the last answered being the one
// stored last (no lost attempt is stamped after its retry).
func TestProducerRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fail      func(int) string
		failWrite func(string, int) string
	}{
		{name: "resource exhausted batches", fail: func(n int) string {
			if n%3 == 0 {
				return "exhausted"
			}
			return ""
		}},
		{name: "unavailable writes", failWrite: func(_ string, try int) string {
			if try%2 == 1 {
				return connect.CodeUnavailable.String()
			}
			return ""
		}},
		{name: "broken streams", fail: func(n int) string {
			if n%4 == 2 {
				return "break"
			}
			return ""
		}},
		{name: "broken streams, lost batches stamped after the break", fail: func(n int) string {
			if n%4 == 2 {
				return "break-late"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScript()
			s.fail, s.failWrite = tc.fail, tc.failWrite
			// Lost batches are stamped 30ms after the break at most: the
			// producer fences their keys for 60ms.
			s.stampLate = 30 * time.Millisecond
			p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, BatchSize: 20, RetryBackoff: time.Millisecond, RetryBackoffMax: 10 * time.Millisecond},
				60*time.Millisecond)
			out := writeAll(t, p, 10, 3, 4)
			time.Sleep(2 * s.stampLate) // every late stamp is in
			checkOrder(t, s, out, 3)
			if tc.name == "broken streams, lost batches stamped after the break" && s.late == 0 {
				t.Fatal("no batch was stamped late: the test proves nothing")
			}
		})
	}
}

// TestProducerFailsWhatCannotBeRetried: an invalid write fails at once
// with its code; the others of its batch are written.
func TestProducerFailsWhatCannotBeRetried(t *testing.T) {
	t.Parallel()
	s := newScript()
	s.failWrite = func(key string, _ int) string {
		if key == "t/bad" {
			return connect.CodeInvalidArgument.String()
		}
		return ""
	}
	p := serveScript(t, s, ProducerConfig{Linger: 20 * time.Millisecond}, time.Millisecond)
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := p.Put(ctx, "t", []byte("bad"), nil); errs <- err }()
	go func() { _, err := p.Put(ctx, "t", []byte("good"), nil); errs <- err }()
	var werr *WriteError
	var failures, successes int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			successes++
		case errors.As(err, &werr) && werr.Code == connect.CodeInvalidArgument:
			failures++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if failures != 1 || successes != 1 {
		t.Fatalf("%d failed, %d written; want 1 and 1", failures, successes)
	}
}

// TestProducerDeliveryTimeout: a write the server keeps refusing fails
// after the delivery timeout with the last error, and Close returns. The
// timeout falls in a backoff (tries at about 0, 300 and 900 ms, the next
// at 2.1 s; 600 ms either side of the 1.5 s timeout): one that falls
// while a try is out answers "unanswered, it may have been written"
// instead, which a loaded machine made this test see with tries 5 ms
// apart, and again with 100 ms (tries at 0, 100 and 300, a 500 ms
// timeout: the third try's answer came more than 200 ms late).
func TestProducerDeliveryTimeout(t *testing.T) {
	t.Parallel()
	s := newScript()
	s.failWrite = func(string, int) string { return connect.CodeUnavailable.String() }
	p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: 300 * time.Millisecond, DeliveryTimeout: 1500 * time.Millisecond}, time.Millisecond)
	_, err := p.Put(context.Background(), "t", []byte("k"), nil)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Code != connect.CodeUnavailable {
		t.Fatalf("after the delivery timeout: %v; want the last unavailable", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tries["t/k"] < 2 {
		t.Fatalf("tried %d times: not retried", s.tries["t/k"])
	}
}

// TestProducerClose: Close sends what is held; a write after Close fails.
func TestProducerClose(t *testing.T) {
	t.Parallel()
	s := newScript()
	p := serveScript(t, s, ProducerConfig{Linger: time.Hour, BatchSize: 1000}, time.Millisecond)
	res := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k"), nil); res <- err }()
	for {
		time.Sleep(time.Millisecond)
		if len(p.space) == 1 {
			break // the write is held (lingering for an hour)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("the held write: %v", err)
	}
	if _, err := p.Put(context.Background(), "t", []byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("a write after Close: %v", err)
	}
}

// TestProducerUnimplemented: against a server without WriteStream a write
// fails at once with unimplemented instead of retrying until its timeout.
func TestProducerUnimplemented(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(wailv1connect.UnimplementedProducerServiceHandler{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	p, err := NewProducer(Options{Addr: srv.URL}, ProducerConfig{DeliveryTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer p.Close(ctx)
	_, err = p.Put(ctx, "t", []byte("k"), nil)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Code != connect.CodeUnimplemented {
		t.Fatalf("against a server without WriteStream: %v", err)
	}
}

// TestProducerMaxInFlightLimit: a producer that would send more batches
// unanswered than a server reads at once is refused at its start.
func TestProducerMaxInFlightLimit(t *testing.T) {
	_, err := NewProducer(Options{Addr: "localhost:1"}, ProducerConfig{MaxInFlight: MaxInFlightLimit + 1})
	var we *WriteError
	if !errors.As(err, &we) || we.Code != connect.CodeInvalidArgument {
		t.Fatalf("MaxInFlight %d: %v, want invalid_argument", MaxInFlightLimit+1, err)
	}
	p, err := NewProducer(Options{Addr: "localhost:1"}, ProducerConfig{MaxInFlight: MaxInFlightLimit})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close(context.Background())
}
