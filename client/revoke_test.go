package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// bearerHeader adds a token to the client's streams.
type bearerHeader string

func (bearerHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (b bearerHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		c := next(ctx, spec)
		c.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return c
	}
}
func (bearerHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestRevokedTokenAfterWrite: a token revoked while a batch of its write
// stream runs: the batch was written, and its answer reaches the producer
// (the stream's credential is checked as it reads a batch, not as it
// answers one); it is not reported refused with no word that it was
// written.
func TestRevokedTokenAfterWrite(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	cfg.Security.ReloadInterval = interval
	tf := &auth.TokenFile{}
	tok, _, err := tf.Create("writer", []auth.Grant{{Permission: auth.Produce, Tables: "tx"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(cfg.TokensPath()); err != nil {
		t.Fatal(err)
	}
	g, err := api.NewGuard(&cfg, api.GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w, px := realProxy(t)
	revoked := make(chan struct{})
	sw := &slowFirst{Writer: px, entered: make(chan struct{}), hold: revoked}
	mux := api.NewMux()
	api.Mount(mux, api.Services{Producer: api.NewProducerService(sw), Admin: wailv1connect.UnimplementedAdminServiceHandler{},
		Events: wailv1connect.UnimplementedEventServiceHandler{}}, g.Options()...)
	srv := httptest.NewUnstartedServer(g.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p := newProducer(wailv1connect.NewProducerServiceClient(srv.Client(), srv.URL, connect.WithInterceptors(bearerHeader(tok))),
		ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 10 * time.Second}, time.Millisecond)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	ctx := context.Background()
	if _, err := p.Put(ctx, "tx", []byte("a"), []byte("1")); err != nil {
		t.Fatalf("a write with a valid token: %v", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := p.Put(ctx, "tx", []byte("slow"), []byte("2")); errc <- err }()
	<-sw.entered // written; its answer waits
	if tf.Revoke("writer", time.Now()) != 1 {
		t.Fatal("nothing revoked")
	}
	if err := tf.Write(cfg.TokensPath()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * interval) // past the next reading of the file
	close(revoked)
	err = <-errc
	row := w.Row("slow")
	if row.Version == 0 {
		t.Fatal("setup: the write was not stored")
	}
	if err == nil {
		return // answered as written: right
	}
	var werr *WriteError
	if !errors.As(err, &werr) {
		t.Fatalf("the write: %v", err)
	}
	if werr.Version == 0 && !strings.Contains(werr.Message, "may have been written") {
		t.Fatalf("the write is stored at version %d, but the producer fails it as refused, with no version and no word that it may have been written: %#v", row.Version, werr)
	}
}
