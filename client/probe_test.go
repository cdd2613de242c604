package client

import (
	"bytes"
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
	"github.com/wail-cdc/wail/internal/api"
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
	p := serveHandler(t, s, ProducerConfig{DeliveryTimeout: 3 * time.Second}, FenceAfterBreak)
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
	p := serveHandler(t, s, ProducerConfig{DeliveryTimeout: 2 * time.Second}, FenceAfterBreak)
	start := time.Now()
	_, err := p.Put(context.Background(), "tx", []byte("k"), []byte("v"))
	t.Logf("Put after %s: %v; streams opened: %d", time.Since(start).Round(time.Millisecond), err, s.streams.Load())
	if err != nil || s.streams.Load() > 5 {
		t.Fatal("the producer cannot write to a server that denies the probe, and reopens streams without backoff")
	}
}

// denyFirstProbe is a fleet mid-upgrade: its first write stream goes to
// an older server, whose guard ends a stream permission_denied on a batch
// that names no table (a token scoped to tables); every later one to a
// server of now.
type denyFirstProbe struct {
	*api.ProducerService
	once sync.Once
}

func (d *denyFirstProbe) WriteStream(ctx context.Context, stream *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	first := false
	d.once.Do(func() { first = true })
	if first {
		req, err := stream.Receive()
		if err != nil {
			return err
		}
		if len(req.GetMutations()) == 0 {
			return connect.NewError(connect.CodePermissionDenied, errors.New(`token lacks the produce permission on table "*"`))
		}
	}
	return d.ProducerService.WriteStream(ctx, stream)
}

// TestProbeDeniedOnceThenProbedAgain: one probe denied by an older server
// (a rolling upgrade) made every later stream of the producer go without
// a probe, to servers of now too: a stream's first batch went unbounded,
// and held by the network it overwrote the producer's newer, acknowledged
// write of its key (as before stamp_before). An answer with server_time
// makes the next stream probe again.
func TestProbeDeniedOnceThenProbedAgain(t *testing.T) {
	t.Parallel()
	w, px := realProxy(t)
	ww := &watchedWriter{Writer: px}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(&denyFirstProbe{ProducerService: api.NewProducerService(ww)}))
	srv := startH2C(t, mux)
	hole := newHoleProxy(t, srv.Listener.Addr().String())
	hc, err := Options{Addr: hole.ln.Addr().String(), H2C: true, PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 30 * time.Second}, 600*time.Millisecond)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
		hc.CloseIdleConnections()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Stream 1: the probe, denied by the older server; stream 2 (a server
	// of now, that tells its clock) writes "first".
	if _, err := p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Stream 2's connection dies, with nothing in flight: no fence.
	hole.blackhole()
	time.Sleep(time.Second)
	// A new connection, open before anything was answered on it, is held
	// from the start: stream 3 goes on it. On a loaded machine the dead
	// connection may not be found out yet (its pings late): the Get then
	// fails on it, "client connection lost", and the next one opens a new
	// connection.
	for try := 1; ; try++ {
		resp, err := hc.Get("http://" + hole.ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if try == 5 {
			t.Fatal(err)
		}
		t.Logf("open a new connection, try %d: %v", try, err)
	}
	hole.hold()
	if _, err := p.Put(ctx, "tx", []byte("k"), []byte("old")); err != nil {
		t.Fatalf("k=old: %v", err)
	}
	acked, err := p.Put(ctx, "tx", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	held := hole.keptBytes()
	if len(held) == 0 {
		t.Fatal("the producer sent nothing on the held connection: the test proves nothing")
	}
	heldOld := bytes.Contains(held, []byte("old"))
	if err := hole.release(len(held)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server reads what was held
	if row := w.Row("k"); string(row.Value) != "new" || row.Version != acked.Version {
		t.Fatalf("key k holds %q at %d; acknowledged new at %d (the held connection carried k=old: %v; writes of k run: %q)",
			row.Value, row.Version, acked.Version, heldOld, ww.callsOfK())
	}
	if heldOld {
		t.Errorf("the held connection carried k=old before its server's clock was known (writes of k run: %q)", ww.callsOfK())
	}
}
