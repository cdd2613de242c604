package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// TestUnloggedWrite: a write of an independent table stored while its
// intent log fails is answered stored but Unlogged: no event is guaranteed
// for it, and the caller can tell.
func TestUnloggedWrite(t *testing.T) {
	t.Parallel()
	w := &proxytest.World{Rows: map[string]store.Row{}, LogFails: true}
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	px := proxy.New(w.Log(), w.Store(), proxytest.TxAndInd(time.Minute), clock, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 64, MaxBatch: 100}, nil)
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	hc, err := Options{Addr: srv.URL, H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL), ProducerConfig{Linger: time.Millisecond}, time.Millisecond)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	r, err := p.Put(context.Background(), "ind", []byte("k"), []byte("v"))
	if w.IntentCount() != 0 || w.Row("k").Version == 0 {
		t.Fatalf("setup: %d intents, row %+v; want the write stored without its intent", w.IntentCount(), w.Row("k"))
	}
	if err != nil || !r.Unlogged || r.Version == 0 {
		t.Fatalf("Put answered %+v, %v; want the write stored and Unlogged (the server answered intent_logged=false: no event is guaranteed)", r, err)
	}
}
