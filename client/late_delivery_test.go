package client

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
)

// watchedWriter is the real proxy that records what it answered for the
// writes of key "k".
type watchedWriter struct {
	api.Writer
	mu  sync.Mutex
	ofK []string // per Write call holding k: its value and the outcome
	// slow delays each answer by that long (a slow store or link);
	// stall each write before it reaches the proxy (a link, or a merge
	// queue, slow before the stamp).
	slow, stall atomic.Int64
}

func (w *watchedWriter) Write(ctx context.Context, muts []proxy.Mutation) []proxy.Result {
	time.Sleep(time.Duration(w.stall.Load()))
	res := w.Writer.Write(ctx, muts)
	time.Sleep(time.Duration(w.slow.Load()))
	for i, m := range muts {
		if string(m.Key) == "k" {
			w.mu.Lock()
			out := "written"
			if res[i].Err != nil {
				out = res[i].Err.Error()
			}
			w.ofK = append(w.ofK, string(m.Value)+": "+out)
			w.mu.Unlock()
		}
	}
	return res
}

func (w *watchedWriter) callsOfK() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ofK...)
}

// lateRig is the real proxy (watched) behind a holeProxy, and a producer
// through it with a 600 ms fence (a 500 ms stamp window) and pings that
// find a held connection dead within 300 ms.
type lateRig struct {
	w    *proxytest.World
	ww   *watchedWriter
	hole *holeProxy
	hc   *http.Client
	p    *Producer
}

// newLateRig starts a lateRig whose proxy's clock reads now (nil: the
// time).
func newLateRig(t *testing.T, now func() time.Time) *lateRig {
	t.Helper()
	w, px := realProxyAt(t, now)
	r := &lateRig{w: w, ww: &watchedWriter{Writer: px}}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(r.ww)))
	srv := startH2C(t, mux)
	r.hole = newHoleProxy(t, srv.Listener.Addr().String())
	hc, err := Options{Addr: r.hole.ln.Addr().String(), H2C: true, PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	r.hc = hc
	r.p = newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+r.hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 30 * time.Second}, 600*time.Millisecond)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.p.Close(ctx)
		hc.CloseIdleConnections()
	})
	return r
}

// deliverLate holds the connection while the producer writes k=old, so
// that its attempt stays in the network; the producer finds the
// connection dead, retries k=old on a new one after the fence, and
// writes k=new. Then the held attempt reaches the server. It returns what
// the server answered that late attempt and k=new's result.
func (r *lateRig) deliverLate(ctx context.Context, t *testing.T) (string, Result) {
	t.Helper()
	r.hole.hold()
	old := make(chan error, 1)
	go func() { _, err := r.p.Put(ctx, "tx", []byte("k"), []byte("old")); old <- err }()
	for deadline := time.Now().Add(5 * time.Second); !bytes.Contains(r.hole.keptBytes(), []byte("old")); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the producer sent no write of k=old on the held connection")
		}
	}
	sent := len(r.hole.keptBytes()) // the batch; not what the client sends after (a reset of the stream)
	if err := <-old; err != nil {   // written on a new connection, after the fence
		t.Fatalf("k=old, retried on a new connection: %v", err)
	}
	res, err := r.p.Put(ctx, "tx", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ww.callsOfK(); len(got) != 2 {
		t.Fatalf("the server ran %d writes of k before the late delivery (%q); want 2 (old's retry, new)", len(got), got)
	}
	if err := r.hole.release(sent); err != nil { // the first attempt of k=old reaches the server now
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(r.ww.callsOfK()) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never ran the late attempt: %q", r.ww.callsOfK())
		}
	}
	return r.ww.callsOfK()[2], res
}

// checkLateRefused checks that the late attempt of k=old was refused for
// its stamp_before and that k holds k=new.
func (r *lateRig) checkLateRefused(t *testing.T, late string, acked Result) {
	t.Helper()
	if !strings.HasPrefix(late, "old: ") || !strings.Contains(late, "stamp_before") {
		t.Errorf("the late attempt of k=old: %q; want refused for its stamp_before", late)
	}
	if row := r.w.Row("k"); string(row.Value) != "new" || row.Version != acked.Version {
		t.Fatalf("key k holds %q at version %d, after the producer's write of %q was acknowledged at version %d: the late attempt of an older write overwrote it",
			row.Value, row.Version, "new", acked.Version)
	}
}

// TestLateDeliveryRefused: a batch that the network delivers to the
// server late (its connection stalled; the producer found it dead by its
// pings, waited FenceAfterBreak and wrote the key again, twice, on a new
// connection) must not be stamped after those writes: its stamp_before,
// set from the server's clock as the answers told it, has passed, so the
// server refuses it, and the key keeps the producer's last write. Before
// stamp_before, the late attempt was stamped when it arrived, over the
// newer, acknowledged write (the server's 5 s stamp bound counts from when
// it reads a batch, not from when the client sent it).
func TestLateDeliveryRefused(t *testing.T) {
	t.Parallel()
	r := newLateRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	late, acked := r.deliverLate(ctx, t)
	r.checkLateRefused(t, late, acked)
}

// TestLateDeliveryAfterWindowGrew: after a batch refused for reaching its
// stamp 800 ms after its send, the stamp window is 1.6 s (1.4 s after the
// retry's answer), not the 500 ms base: a batch held in the network must
// keep its keys fenced until its own bound has passed (plus the margin),
// not for the fence after the break. (Fenced for the fixed 600 ms after
// the break, the producer wrote k again while the held attempt's bound
// was still ahead, and the late attempt overwrote that newer write.)
func TestLateDeliveryAfterWindowGrew(t *testing.T) {
	t.Parallel()
	r := newLateRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.ww.stall.Store(int64(800 * time.Millisecond))
	if _, err := r.p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil { // refused once, then in the grown window
		t.Fatal(err)
	}
	r.ww.stall.Store(0)
	start := time.Now()
	late, acked := r.deliverLate(ctx, t)
	r.checkLateRefused(t, late, acked)
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Errorf("k was written again %s after the held attempt was sent; want no sooner than its 1.4 s window", took)
	}
}

// TestLateDeliveryAfterClockStepBack: the server's clock was 2 s ahead
// and is set right (one proxy). The producer's estimate follows it (the
// last answer's server_time counts), so a batch delivered late is still
// refused. (With the largest estimate ever seen kept, stamp_before stayed
// 2 s late, past the fence, and the late batch overwrote the newer write.)
func TestLateDeliveryAfterClockStepBack(t *testing.T) {
	t.Parallel()
	var off atomic.Int64
	off.Store(int64(2 * time.Second))
	r := newLateRig(t, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	off.Store(0)                        // NTP sets the server's clock right
	time.Sleep(2500 * time.Millisecond) // the HLC caught up with it
	if _, err := r.p.Put(ctx, "tx", []byte("second"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	late, acked := r.deliverLate(ctx, t)
	r.checkLateRefused(t, late, acked)
}

// TestFirstWriteWaitsForTheClock: a stream's first write waits until the
// server told its clock (the probe's answer): a connection held from the
// start carries the probe and nothing of the write, so no attempt without
// a stamp_before can be delivered late. (With the first batches sent
// unbounded, the held attempt of k=old was stamped after the producer's
// newer write of k and overwrote it.)
func TestFirstWriteWaitsForTheClock(t *testing.T) {
	t.Parallel()
	r := newLateRig(t, nil)
	// A connection, open before anything was answered to the producer.
	if resp, err := r.hc.Get("http://" + r.hole.ln.Addr().String() + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.hole.hold()
	if _, err := r.p.Put(ctx, "tx", []byte("k"), []byte("old")); err != nil { // on a new connection, once the held one is found dead
		t.Fatalf("k=old: %v", err)
	}
	acked, err := r.p.Put(ctx, "tx", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	held := r.hole.keptBytes()
	if len(held) == 0 {
		t.Fatal("the producer sent nothing on the held connection: the test proves nothing")
	}
	if bytes.Contains(held, []byte("old")) {
		t.Fatalf("the held connection carried the write of k=old (%d bytes held) before the server's clock was known", len(held))
	}
	if err := r.hole.release(len(held)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server reads the probe
	if row := r.w.Row("k"); string(row.Value) != "new" || row.Version != acked.Version {
		t.Fatalf("key k holds %q at %d; acknowledged new at %d", row.Value, row.Version, acked.Version)
	}
	if got := r.ww.callsOfK(); len(got) != 2 {
		t.Fatalf("writes of k the server ran: %q; want 2 (old, new)", got)
	}
}

// TestLateDeliveryRightAfterClockStepBack: the server's wall clock steps
// back by 5 s and the producer writes at once: its HLC stays at its last
// version until the wall clock catches up. With stamp_before counted on
// that HLC, the producer's estimate ran on in real time, the held batch's
// bound lay seconds past the fence, and the late attempt overwrote the
// newer write; on the process's monotonic clock no step moves it.
func TestLateDeliveryRightAfterClockStepBack(t *testing.T) {
	t.Parallel()
	var off atomic.Int64
	off.Store(int64(5 * time.Second))
	r := newLateRig(t, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	off.Store(0) // NTP steps the server's clock back; no sleep: the HLC stalls for 5 s
	late, acked := r.deliverLate(ctx, t)
	r.checkLateRefused(t, late, acked)
}
