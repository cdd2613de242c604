package client

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/hlc"
)

// TestClockStepForwardNoLivelock: the server's clock steps forward by more
// than the stamp window (an NTP step, or the producer's next stream lands
// on a proxy ahead): the refused batch's answer tells the new time, and
// the retry goes through. (With the estimate taken from versions only,
// every batch was refused, unversioned, and the producer never wrote
// again.)
func TestClockStepForwardNoLivelock(t *testing.T) {
	t.Parallel()
	var off atomic.Int64
	_, px := realProxyAt(t, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := startH2C(t, mux)
	hc, _ := Options{Addr: srv.Listener.Addr().String(), H2C: true}.HTTPClient()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, 600*time.Millisecond)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	if _, err := p.Put(context.Background(), "tx", []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	off.Store(int64(time.Second)) // > stampWindow (500 ms); in production > 5 s
	if _, err := p.Put(context.Background(), "tx", []byte("b"), []byte("2")); err != nil {
		t.Fatalf("after the server's clock stepped forward: %v", err)
	}
}

// TestServerTimeFromTheProxy: the service over the real proxy (as wail
// serve wires it) answers a batch without mutations with its clock alone,
// and every answer with it.
func TestServerTimeFromTheProxy(t *testing.T) {
	t.Parallel()
	_, px := realProxy(t)
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := startH2C(t, mux)
	hc, err := Options{Addr: srv.Listener.Addr().String(), H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := wailv1connect.NewProducerServiceClient(hc, srv.URL).WriteStream(ctx)
	defer func() { _ = st.CloseRequest(); _ = st.CloseResponse() }()
	for i, req := range []*wailv1.WriteStreamRequest{
		{Seq: 1},
		{Seq: 2, Mutations: []*wailv1.Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}}},
	} {
		before := time.Now()
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := st.Receive()
		if err != nil {
			t.Fatal(err)
		}
		at := hlc.Time(resp.GetServerTime())
		if at.Before(before.Truncate(time.Millisecond)) || at.After(time.Now()) {
			t.Errorf("answer %d: server_time %s, want between %s and now", i, at, before)
		}
		if len(resp.GetResults()) != len(req.GetMutations()) || resp.GetError() != nil {
			t.Errorf("answer %d: %v", i, resp)
		}
	}
}
