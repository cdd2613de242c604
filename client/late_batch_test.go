package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// realProxy is the real proxy over proxytest's log and store, with one
// transactional table, tx.
func realProxy(t *testing.T) (*proxytest.World, *proxy.Proxy) { return realProxyAt(t, nil) }

// realProxyAt is realProxy with the proxy's clock reading now (nil: the
// time).
func realProxyAt(t *testing.T, now func() time.Time) (*proxytest.World, *proxy.Proxy) {
	t.Helper()
	w := &proxytest.World{Rows: map[string]store.Row{}}
	clock, err := hlc.New(3, now)
	if err != nil {
		t.Fatal(err)
	}
	tbs := proxytest.Tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	return w, proxy.New(w.Log(), w.Store(), tbs, clock, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 64, MaxBatch: 100}, nil)
}

// startH2C serves h over h2c (HTTP/2 without TLS) until the test ends.
func startH2C(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// slowFirst is the real proxy whose first batch holding key "slow" takes
// until hold is closed to answer (a slow store write, well inside the
// table's visibility window).
type slowFirst struct {
	api.Writer
	once    sync.Once
	entered chan struct{}
	hold    chan struct{}
}

func (s *slowFirst) Write(ctx context.Context, muts []proxy.Mutation) []proxy.Result {
	res := s.Writer.Write(ctx, muts)
	for _, m := range muts {
		if string(m.Key) == "slow" {
			first := false
			s.once.Do(func() { first = true })
			if first {
				close(s.entered)
				<-s.hold
			}
			break
		}
	}
	return res
}

// TestBatchReadLateOverwrites: a server asked to run fewer batches of a
// stream at once (StreamLimits.InFlight 1) than the producer sends would
// leave batches unread in the stream while its slots are busy. When the
// connection dies (black-holed), the producer fences the lost writes for
// FenceAfterBreak and retries them on a new connection; the old stream's
// server side would still read the unread batch once its slot frees, and
// the proxy stamp it then (MaxStampDelay counts from the proxy's Write
// call): an older value over a newer, acknowledged write of its key. The
// server reads at least DefaultStreamInFlight (MaxInFlightLimit) batches
// at once whatever it is asked: the batch is stamped at once, before the
// newer write.
func TestBatchReadLateOverwrites(t *testing.T) {
	t.Parallel()
	w, px := realProxy(t)
	sw := &slowFirst{Writer: px, entered: make(chan struct{}), hold: make(chan struct{})}
	var release sync.Once
	svc := api.NewProducerService(sw).WithStreamLimits(api.StreamLimits{InFlight: 1})
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(svc))
	srv := startH2C(t, mux)
	t.Cleanup(func() { release.Do(func() { close(sw.hold) }) })
	hole := newHoleProxy(t, srv.Listener.Addr().String())
	hc, err := Options{Addr: hole.ln.Addr().String(), H2C: true, PingInterval: 200 * time.Millisecond, PingTimeout: 300 * time.Millisecond}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	// BatchSize 1: each write is a full batch and goes at once, up to
	// MaxInFlight (8, the default) on the stream.
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 30 * time.Second}, FenceAfterBreak)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := p.Put(ctx, "tx", []byte("slow"), []byte("x")); errs <- err }()
	<-sw.entered // batch 1 holds the stream's only slot
	go func() { _, err := p.Put(ctx, "tx", []byte("k"), []byte("old")); errs <- err }()
	time.Sleep(300 * time.Millisecond) // batch 2 reaches the server, which does not read it yet
	hole.blackhole()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a write retried on a new connection: %v", err)
		}
	}
	r, err := p.Put(ctx, "tx", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("k=new acknowledged at version %d; stored %+v", r.Version, w.Row("k"))
	release.Do(func() { close(sw.hold) }) // the slow batch ends; the dead stream's slot frees
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && w.Row("k").Version == r.Version {
		time.Sleep(10 * time.Millisecond)
	}
	if row := w.Row("k"); string(row.Value) != "new" {
		t.Fatalf("key k holds %q at version %d, after the producer's write of %q was acknowledged at version %d: a lost attempt of the older write was stamped after the fence",
			row.Value, row.Version, "new", r.Version)
	}
}
