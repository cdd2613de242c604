package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// ticking is an EventService whose Subscribe sends one event per tick.
type ticking struct {
	wailv1connect.UnimplementedEventServiceHandler
	tick chan struct{}
}

func (s ticking) Subscribe(ctx context.Context, _ *connect.Request[wailv1.SubscribeRequest], out *connect.ServerStream[wailv1.SubscribeResponse]) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.tick:
		}
		if err := out.Send(&wailv1.SubscribeResponse{}); err != nil {
			return err
		}
	}
}

// tickingStream serves a ticking EventService behind g (TLS, HTTP/2) and
// opens a Subscribe stream of table t with the bearer token tok, past its
// first event; it returns the service (to send more), the stream and the
// test's context (10 s).
func tickingStream(t *testing.T, g *Guard, tok string) (ticking, *connect.ServerStreamForClient[wailv1.SubscribeResponse], context.Context) {
	t.Helper()
	svc := ticking{tick: make(chan struct{})}
	mux := NewMux()
	Mount(mux, Services{Admin: wailv1connect.UnimplementedAdminServiceHandler{}, Events: svc}, g.Options()...)
	srv := httptest.NewUnstartedServer(g.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req := connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"})
	req.Header().Set("Authorization", "Bearer "+tok)
	go func() { svc.tick <- struct{}{} }() // the answer's headers come with the first event
	stream, err := wailv1connect.NewEventServiceClient(srv.Client(), srv.URL).Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close() })
	if !stream.Receive() {
		t.Fatalf("the first event: %v", stream.Err())
	}
	return svc, stream, ctx
}

// offer hands a ticking stream's handler an event to send, unless the
// stream ended first (its watch found the credential's change before the
// send did): either way no event may reach the client.
func offer(tick chan<- struct{}) {
	select {
	case tick <- struct{}{}:
	case <-time.After(2 * time.Second):
	}
}

// TestRevokedTokenEndsStream: a token revoked while its Subscribe stream
// is open gets no event after the revocation takes effect (the next
// reading of the tokens file): the stream ends Unauthenticated, as a new
// call would.
func TestRevokedTokenEndsStream(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = interval },
		"reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
	svc, stream, _ := tickingStream(t, g, tok)
	if tf.Revoke("reader", time.Now()) != 1 {
		t.Fatal("nothing revoked")
	}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval) // past the next reading of the file
	offer(svc.tick)          // the stream sends an event, unless its watch ended it first
	if stream.Receive() {
		t.Fatal("an event reached a revoked token")
	}
	if connect.CodeOf(stream.Err()) != connect.CodeUnauthenticated {
		t.Fatalf("the stream ended with %v, want unauthenticated", stream.Err())
	}
}

// TestRecheck: what a stream's credential is checked against as it goes.
func TestRecheck(t *testing.T) {
	t.Parallel()
	g, tok := newTestGuard(t)
	now := time.Unix(2_000_000_000, 0)
	g.now = func() time.Time { return now }
	cert := auth.Principal{Kind: auth.KindCert, Name: "svc"}
	// Another well-formed token: the last character changed (to "B" when
	// it already is "A", one token in 64).
	other := tok[:len(tok)-1] + "A"
	if other == tok {
		other = tok[:len(tok)-1] + "B"
	}
	for _, tc := range []struct {
		name string
		id   identity
		ok   bool
	}{
		{"anonymous (auth let it through)", identity{}, true},
		{"token still valid", identity{principal: auth.Principal{Kind: auth.KindToken, Name: "writer"}, token: tok}, true},
		{"token unknown now", identity{principal: auth.Principal{Kind: auth.KindToken, Name: "writer"}, token: other}, false},
		{"certificate valid", identity{principal: cert, notAfter: now.Add(time.Second)}, true},
		{"certificate expired during the stream", identity{principal: cert, notAfter: now.Add(-time.Second)}, false},
	} {
		_, err := g.recheck(tc.id)
		if tc.ok != (err == nil) || err != nil && connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
