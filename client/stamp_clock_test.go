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
)

// TestClockStepForwardNoLivelock: the server's wall clock steps forward by
// more than the stamp window (an NTP step): writes go on. (With the
// estimate taken from versions only, every batch was refused, unversioned,
// and the producer never wrote again; stamp_before now counts on the
// server's monotonic clock, which no step moves.)
func TestClockStepForwardNoLivelock(t *testing.T) {
	t.Parallel()
	var off atomic.Int64
	_, px := realProxyAt(t, func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
	p := serveHandler(t, api.NewProducerService(px),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, 600*time.Millisecond)
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
// and every answer with it: the process's monotonic clock.
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
	var times []uint64
	var sends []time.Time
	for i, req := range []*wailv1.WriteStreamRequest{
		{Seq: 1},
		{Seq: 2, Mutations: []*wailv1.Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}}},
	} {
		time.Sleep(20 * time.Millisecond)
		sends = append(sends, time.Now())
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := st.Receive()
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, resp.GetServerTime())
		if len(resp.GetResults()) != len(req.GetMutations()) || resp.GetError() != nil {
			t.Errorf("answer %d: %v", i, resp)
		}
	}
	// The process's monotonic clock: it moved on by about the time between
	// the two answers (at least the time from the first answer's arrival
	// to the second send, at most from the first send to now).
	if times[0] == 0 || times[1] <= times[0] {
		t.Fatalf("server_time %v: want non-zero and increasing", times)
	}
	if d := time.Duration(times[1] - times[0]); d < 20*time.Millisecond || d > time.Since(sends[0]) {
		t.Errorf("server_time moved %s between the answers; want between 20 ms and %s", d, time.Since(sends[0]))
	}
}
