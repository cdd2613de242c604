package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/proxy"
)

// watchedWriter is the real proxy that records what it answered for the
// writes of key "k".
type watchedWriter struct {
	api.Writer
	mu  sync.Mutex
	ofK []string // per Write call holding k: its value and the outcome
}

func (w *watchedWriter) Write(ctx context.Context, muts []proxy.Mutation) []proxy.Result {
	res := w.Writer.Write(ctx, muts)
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

// TestLateDeliveryRefused: a batch that the network delivers to the
// server late (its connection stalled; the producer found it dead by its
// pings, waited FenceAfterBreak and wrote the key again, twice, on a new
// connection) must not be stamped after those writes: its stamp_before,
// set from the versions the producer was answered before, has passed, so
// the server refuses it, and the key keeps the producer's last write.
// Before stamp_before, the late attempt was stamped when it arrived, over
// the newer, acknowledged write (the server's 5 s stamp bound counts from
// when it reads a batch, not from when the client sent it).
func TestLateDeliveryRefused(t *testing.T) {
	t.Parallel()
	w, px := realProxy(t)
	ww := &watchedWriter{Writer: px}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(ww)))
	srv := startH2C(t, mux)
	hole := newHoleProxy(t, srv.Listener.Addr().String())
	hc, err := Options{Addr: hole.ln.Addr().String(), H2C: true, PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	const fence = 600 * time.Millisecond
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 30 * time.Second}, fence)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil { // an answered version: the producer knows the server's clock
		t.Fatal(err)
	}

	hole.hold()
	old := make(chan error, 1)
	go func() { _, err := p.Put(ctx, "tx", []byte("k"), []byte("old")); old <- err }()
	for deadline := time.Now().Add(5 * time.Second); hole.kept() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the producer sent nothing on the held connection")
		}
	}
	time.Sleep(20 * time.Millisecond) // the rest of the batch's frames
	sent := hole.kept()               // the batch; not what the client sends after (a reset of the stream)
	if err := <-old; err != nil {     // written on a new connection, after the fence
		t.Fatalf("k=old, retried on a new connection: %v", err)
	}
	r, err := p.Put(ctx, "tx", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ww.callsOfK(); len(got) != 2 {
		t.Fatalf("the server ran %d writes of k before the late delivery (%q); want 2 (old's retry, new)", len(got), got)
	}

	if err := hole.release(sent); err != nil { // the first attempt of k=old reaches the server now
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(ww.callsOfK()) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never ran the late attempt: %q", ww.callsOfK())
		}
	}
	late := ww.callsOfK()[2]
	if !strings.HasPrefix(late, "old: ") || !strings.Contains(late, "stamp_before") {
		t.Errorf("the late attempt of k=old: %q; want refused for its stamp_before", late)
	}
	if row := w.Row("k"); string(row.Value) != "new" || row.Version != r.Version {
		t.Fatalf("key k holds %q at version %d, after the producer's write of %q was acknowledged at version %d: the late attempt of an older write overwrote it",
			row.Value, row.Version, "new", r.Version)
	}
}
