package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/proxy"
)

// h2c is an HTTP/2 client without TLS (write streams need HTTP/2).
func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// serveH2C serves svc over HTTP/1.1 and unencrypted HTTP/2.
func serveH2C(t *testing.T, svc *ProducerService) wailv1connect.ProducerServiceClient {
	c, _ := serveH2CServer(t, svc)
	return c
}

// serveH2CServer is serveH2C that also returns the server.
func serveH2CServer(t *testing.T, svc *ProducerService) (wailv1connect.ProducerServiceClient, *httptest.Server) {
	t.Helper()
	path, h := wailv1connect.NewProducerServiceHandler(svc)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return serveH2CHandler(t, mux)
}

// serveH2CHandler serves h (a producer service) over HTTP/1.1 and
// unencrypted HTTP/2.
func serveH2CHandler(t *testing.T, h http.Handler) (wailv1connect.ProducerServiceClient, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	hc := h2c()
	t.Cleanup(hc.CloseIdleConnections) // before srv.Close: HTTP/2 connections stay open
	return wailv1connect.NewProducerServiceClient(hc, srv.URL), srv
}

// streamProxy is a proxy on w with a table "tx" (a minute's window) that
// takes batches of up to 100 mutations.
func streamProxy(t *testing.T, w *world) *proxy.Proxy {
	t.Helper()
	tbs := tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	return worldProxy(t, w, tbs, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 64, MaxBatch: 100})
}

func batchOf(seq uint64, n int) *wailv1.WriteStreamRequest {
	req := &wailv1.WriteStreamRequest{Seq: seq}
	for i := range n {
		req.Mutations = append(req.Mutations, &wailv1.Mutation{Table: "tx", Key: fmt.Appendf(nil, "k%d-%d", seq, i), Value: []byte("v")})
	}
	return req
}

// TestWriteStream: batches on one stream are each answered once, by
// seq, with a result per mutation as stored; a batch refused as a whole
// (too many mutations) says why and the stream goes on; a malformed
// mutation (a bad op, value and value_json both set) fails alone, and the
// others of its batch are written.
func TestWriteStream(t *testing.T) {
	t.Parallel()
	w := &world{}
	c := serveH2C(t, NewProducerService(streamProxy(t, w)).WithStreamLimits(StreamLimits{InFlight: DefaultStreamInFlight}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := c.WriteStream(ctx)
	const batches = 40
	bad := map[uint64]string{7: "invalid_argument"}
	malformed := map[uint64]int{8: 2, 9: 4} // batch -> its malformed mutation
	go func() {
		for seq := uint64(1); seq <= batches; seq++ {
			req := batchOf(seq, 5)
			switch seq {
			case 7:
				req = batchOf(seq, 101) // over MaxBatch
			case 8:
				req.Mutations[2].Op = wailv1.Op_OP_ABORT
			case 9:
				req.Mutations[4].ValueJson = `{"a":1}`
			}
			if err := s.Send(req); err != nil {
				t.Errorf("send %d: %v", seq, err)
				return
			}
		}
		_ = s.CloseRequest()
	}()
	seen := map[uint64]bool{}
	for range batches {
		a, err := s.Receive()
		if err != nil {
			t.Fatalf("receive after %d answers: %v", len(seen), err)
		}
		if seen[a.Seq] {
			t.Fatalf("batch %d answered twice", a.Seq)
		}
		seen[a.Seq] = true
		if code, ok := bad[a.Seq]; ok {
			if a.Error.GetCode() != code || len(a.Results) != 0 {
				t.Fatalf("batch %d: %v, %d results; want a %s refusal of the batch", a.Seq, a.Error, len(a.Results), code)
			}
			continue
		}
		if a.Error != nil || len(a.Results) != 5 {
			t.Fatalf("batch %d: %v, %d results", a.Seq, a.Error, len(a.Results))
		}
		for i, r := range a.Results {
			row := w.Row(fmt.Sprintf("k%d-%d", a.Seq, i))
			if j, ok := malformed[a.Seq]; ok && i == j {
				if r.Error.GetCode() != "invalid_argument" || r.Version != 0 || row.Version != 0 {
					t.Fatalf("batch %d's malformed mutation %d: %+v, stored row at version %d", a.Seq, i, r, row.Version)
				}
				continue
			}
			if !r.Stored || !r.IntentLogged || r.Version == 0 || row.Version != r.Version {
				t.Fatalf("batch %d mutation %d: %+v, stored row at version %d", a.Seq, i, r, row.Version)
			}
		}
	}
	if _, err := s.Receive(); err == nil {
		t.Fatal("an answer more than the batches sent")
	}
	if want := (batches-1)*5 - len(malformed); w.IntentCount() != want {
		t.Fatalf("%d intents logged, want %d (a refused batch and a malformed mutation write nothing)", w.IntentCount(), want)
	}
}

// TestWriteStreamLimits: a client address gets at most
// MaxStreamsPerClient streams, the server at most MaxStreams; a refused
// stream fails with ResourceExhausted naming the setting, and a closed
// stream frees its slot.
func TestWriteStreamLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		limits  StreamLimits
		setting string
	}{
		{"per client", StreamLimits{SlotLimits: SlotLimits{MaxStreams: 10, MaxStreamsPerClient: 1}}, "api.max_write_streams_per_client"},
		{"total", StreamLimits{SlotLimits: SlotLimits{MaxStreams: 1, MaxStreamsPerClient: 1}}, "api.max_write_streams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			refused := make(chan string, 10)
			tc.limits.Refused = func(l string) { refused <- l }
			svc := NewProducerService(streamProxy(t, w)).WithStreamLimits(tc.limits)
			c := serveH2C(t, svc)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			first := c.WriteStream(ctx)
			if err := first.Send(batchOf(1, 1)); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Receive(); err != nil { // the stream holds its slot now
				t.Fatal(err)
			}
			second := c.WriteStream(ctx)
			_ = second.Send(batchOf(1, 1))
			_, err := second.Receive()
			if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("second stream: %v; want resource_exhausted naming %s", err, tc.setting)
			}
			if len(refused) != 1 {
				t.Fatalf("%d refusals counted, want 1", len(refused))
			}
			_ = first.CloseRequest()
			_, _ = first.Receive()
			_ = first.CloseResponse()
			waitFor(t, func() bool { svc.streams.mu.Lock(); defer svc.streams.mu.Unlock(); return svc.streams.open == 0 })
			third := c.WriteStream(ctx)
			if err := third.Send(batchOf(2, 1)); err != nil {
				t.Fatal(err)
			}
			if a, err := third.Receive(); err != nil || a.Error != nil {
				t.Fatalf("a stream after the first closed: %v %v", a, err)
			}
			_ = third.CloseRequest()
			_ = third.CloseResponse()
		})
	}
}

// TestWriteStreamClientGoesAway: a client that goes away with batches in
// flight cuts none of them: every intent logged has its store write, and
// every batch the client saw answered is stored as answered.
func TestWriteStreamClientGoesAway(t *testing.T) {
	t.Parallel()
	// Batches are in flight when the client leaves; a store write whose
	// context ended fails, as a database's would.
	w := &world{LogDelay: 5 * time.Millisecond, ApplyHonoursCtx: true}
	svc := NewProducerService(streamProxy(t, w)).WithStreamLimits(StreamLimits{InFlight: 8})
	c, srv := serveH2CServer(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := c.WriteStream(ctx)
	answered := make(chan *wailv1.WriteStreamResponse, 100)
	go func() {
		for {
			a, err := s.Receive()
			if err != nil {
				close(answered)
				return
			}
			answered <- a
		}
	}()
	for seq := uint64(1); seq <= 30; seq++ {
		if err := s.Send(batchOf(seq, 3)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return w.IntentCount() > 0 })
	srv.CloseClientConnections() // the client is gone mid-stream: batches are in flight (each append takes 5ms)
	waitFor(t, func() bool { svc.streams.mu.Lock(); defer svc.streams.mu.Unlock(); return svc.streams.open == 0 })
	if w.IntentCount() == 0 {
		t.Fatal("nothing was written before the client left: the test proves nothing")
	}
	w.Mu.Lock()
	intents := w.Intents
	w.Mu.Unlock()
	for _, in := range intents {
		if row := w.Row(string(in.Key)); row.Version != in.Version {
			t.Fatalf("intent of %s at version %d logged, but the store holds version %d: the store write was cut", in.Key, in.Version, row.Version)
		}
	}
	for a := range answered {
		for i, r := range a.Results {
			if row := w.Row(fmt.Sprintf("k%d-%d", a.Seq, i)); !r.Stored || row.Version != r.Version {
				t.Fatalf("answered batch %d mutation %d: %+v, store at %d", a.Seq, i, r, row.Version)
			}
		}
	}
}

// TestWriteStreamClose: Close ends a stream that is idle; batches
// answered before stay answered.
func TestWriteStreamClose(t *testing.T) {
	t.Parallel()
	w := &world{}
	svc := NewProducerService(streamProxy(t, w))
	c := serveH2C(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := c.WriteStream(ctx)
	if err := s.Send(batchOf(1, 2)); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Receive(); err != nil || a.Error != nil {
		t.Fatalf("%v %v", a, err)
	}
	svc.Close()
	if _, err := s.Receive(); err == nil {
		t.Fatal("the stream went on after Close")
	}
}

// TestWriteStreamOverQuota: a WriteStream batch over the caller's write
// quota is refused as Write refuses it (nothing written, resource_exhausted
// with the wait), but per mutation and with the stream kept open: the
// batch after the wait, on the same stream, is written.
func TestWriteStreamOverQuota(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Quotas.WriteRate, cfg.Security.Quotas.WriteBurst = 10, 3 // 3 at once, then one per 100ms
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var clock sync.Mutex
	now := time.Unix(1000, 0)
	g.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	w := &world{}
	path, h := wailv1connect.NewProducerServiceHandler(NewProducerService(streamProxy(t, w)), g.Options()...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	c, _ := serveH2CHandler(t, g.Middleware(mux))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := c.WriteStream(ctx)
	defer func() { _ = s.CloseResponse() }()
	for seq, step := range []struct {
		name    string
		advance time.Duration // of the clock, before the batch
		retryMs int64         // 0: written
	}{
		{"within the burst", 0, 0},
		{"over the quota", 0, 300},
		{"still over it", 100 * time.Millisecond, 200},
		{"after the wait", 200 * time.Millisecond, 0},
	} {
		clock.Lock()
		now = now.Add(step.advance)
		clock.Unlock()
		req := batchOf(uint64(seq+1), 3)
		if err := s.Send(req); err != nil {
			t.Fatalf("%s: send: %v", step.name, err)
		}
		a, err := s.Receive()
		if err != nil {
			t.Fatalf("%s: the stream ended: %v", step.name, err)
		}
		if a.Seq != req.Seq || a.Error != nil || len(a.Results) != 3 {
			t.Fatalf("%s: answered %v; want a result per mutation", step.name, a)
		}
		for i, r := range a.Results {
			row := w.Row(fmt.Sprintf("k%d-%d", req.Seq, i))
			if step.retryMs == 0 {
				if r.Error != nil || !r.Stored || row.Version != r.Version {
					t.Fatalf("%s: mutation %d: %v, stored at %d; want written", step.name, i, r, row.Version)
				}
				continue
			}
			if e := r.GetError(); e.GetCode() != connect.CodeResourceExhausted.String() || e.GetRetryAfterMs() != step.retryMs ||
				!strings.Contains(e.GetMessage(), "over its write quota") || !strings.Contains(e.GetMessage(), "security.quotas.write_rate") ||
				r.Version != 0 || row.Version != 0 {
				t.Fatalf("%s: mutation %d: %v, stored at %d; want resource_exhausted, retry in %dms, unwritten", step.name, i, r, row.Version, step.retryMs)
			}
		}
	}
	if n := w.IntentCount(); n != 6 {
		t.Fatalf("%d intents logged, want 6 (refused batches write nothing)", n)
	}
}
