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
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// runSlowLinkWith is runSlowLink with the link's rate, the number and
// size of the values, the batch size and the delivery timeout given.
func runSlowLinkWith(t *testing.T, fence time.Duration, rate, n, size, batch int, dt time.Duration) (ok, failed int64, lastErr atomic.Value) {
	w := &proxytest.World{Rows: map[string]store.Row{}}
	clock, _ := hlc.New(3, nil)
	tbs := proxytest.Tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	px := proxy.New(w.Log(), w.Store(), tbs, clock, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 1 << 20, MaxBatch: 100}, nil)
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := startH2C(t, mux)
	addr := slowLink(t, srv.Listener.Addr().String(), rate)
	hc, _ := Options{Addr: addr, H2C: true}.HTTPClient()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+addr),
		ProducerConfig{BatchSize: batch, MaxBatchBytes: 8 << 20, Linger: time.Millisecond, DeliveryTimeout: dt}, fence)
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	val := make([]byte, size)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Put(context.Background(), "tx", []byte(fmt.Sprint(i)), val); err != nil {
				atomic.AddInt64(&failed, 1)
				lastErr.Store(err.Error())
			} else {
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	return
}

// TestHuntSlowLinkPastWindowCap: the stamp window's cap (12 times its
// base: 1 min with FenceAfterBreak) brings back the regression that
// 274f735 backed out, on a link slower still: once the bytes of the
// batches in flight take longer than the cap to cross the link
// (MaxInFlight x MaxBatchBytes / rate: 8 x 16 MiB under ~2.2 MB/s with
// the defaults), a batch queued behind them reaches the server past its
// stamp_before and is refused, again and again, until the writes fail
// at their delivery timeout; all are written without a bound. Scaled: a
// 240 ms fence (200 ms window, capped at 2.4 s), 8 batches of 960 KiB
// on a 2 MiB/s link (3.75 s in flight; 0.5 s for one batch).
func TestHuntSlowLinkPastWindowCap(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ok, failed, last := runSlowLinkWith(t, 240*time.Millisecond, 2<<20, 64, 240<<10, 4, 20*time.Second)
	t.Logf("ok %d failed %d in %s", ok, failed, time.Since(start))
	if failed > 0 {
		t.Fatalf("%d of %d writes failed on a slow link that carries them all within the delivery timeout; the last: %v", failed, ok+failed, last.Load())
	}
}

// TestHuntSlowLinkUnbounded: the same link without a bound (a fence
// under 120 ms sets none): every write is written.
func TestHuntSlowLinkUnbounded(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ok, failed, last := runSlowLinkWith(t, 50*time.Millisecond, 2<<20, 64, 240<<10, 4, 20*time.Second)
	t.Logf("ok %d failed %d in %s", ok, failed, time.Since(start))
	if failed > 0 {
		t.Fatalf("%d of %d writes failed; the last: %v", failed, ok+failed, last.Load())
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

// TestHuntProbeDeniedOnceUnboundedForGood: one probe denied by an older
// server (a rolling upgrade) made every later stream of the producer go
// without a probe, to servers of now too: a stream's first batch went
// unbounded, and held by the network it overwrote the producer's newer,
// acknowledged write of its key (as before stamp_before).
func TestHuntProbeDeniedOnceUnboundedForGood(t *testing.T) {
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
	// from the start: stream 3 goes on it.
	if resp, err := hc.Get("http://" + hole.ln.Addr().String() + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
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

// TestHuntSlowStoreLengthensFence: one answer slow for its store write,
// after its stamp (2.5 s: a store, or an intent log, slow for a while),
// grows the stamp window to twice that, though the bound needs to cover
// only the time to the stamp; a batch lost with its stream a while later
// then fences its keys for that window from its send, past the write's
// delivery timeout: the write fails, where it was retried after the
// fence of the break (600 ms here, FenceAfterBreak) and written before.
func TestHuntSlowStoreLengthensFence(t *testing.T) {
	t.Parallel()
	r := newLateRig(t, nil)
	p := newProducer(wailv1connect.NewProducerServiceClient(r.hc, "http://"+r.hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, 600*time.Millisecond)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	ctx := context.Background()
	r.ww.slow.Store(int64(2500 * time.Millisecond))
	if _, err := p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	r.ww.slow.Store(0)
	r.hole.hold() // the connection is held, then found dead by its pings
	start := time.Now()
	if _, err := p.Put(ctx, "tx", []byte("k"), []byte("v")); err != nil {
		t.Fatalf("a write lost with a connection found dead within 300 ms, after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
}
