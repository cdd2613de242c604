package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestJWTStreamKeepsTheLeeway: a stream opened with a JWT is checked
// again as a new call would be, security.auth.jwt.leeway included. A JWT
// whose exp passed less than the leeway ago is taken by a call (the
// issuer's clock may be behind), and its Subscribe stream must go on
// until the leeway is over too, then end Unauthenticated saying it
// expired. Before, the stream ended at its first check, "expired ...
// during the stream", though it was opened after exp and a new call was
// still accepted: a client reconnected in a loop until the leeway ran out.
func TestJWTStreamKeepsTheLeeway(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	const leeway = 2 * time.Second
	is := newJWTIssuer(t, "k")
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.ReloadInterval = interval
		c.Security.Auth.JWT = config.JWT{JWKSFile: is.path, Issuer: "https://idp", Leeway: leeway}
		c.Security.Auth.Grants = append(c.Security.Auth.Grants, config.Grant{Principal: "jwt:alice", Allow: []string{"consume:t"}})
	}, "reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	svc := ticking{tick: make(chan struct{})}
	mux := NewMux()
	Mount(mux, Services{Admin: wailv1connect.UnimplementedAdminServiceHandler{}, Events: svc}, g.Options()...)
	srv := httptest.NewUnstartedServer(g.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	// exp is a whole second (NumericDate): 1.2s to 0.2s ago, within the
	// leeway for 0.8s at least.
	exp := time.Now().Add(-200 * time.Millisecond).Truncate(time.Second)
	req := connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"})
	req.Header().Set("Authorization", "Bearer "+is.mintUntil("k", "alice", exp))
	go func() { svc.tick <- struct{}{} }() // the answer's headers come with the first event
	stream, err := wailv1connect.NewEventServiceClient(srv.Client(), srv.URL).Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("a JWT within the leeway of its exp opens no stream: %v", stream.Err())
	}
	time.Sleep(5 * interval) // past the stream's next checks
	offer(svc.tick)
	if !stream.Receive() {
		t.Fatalf("the stream of a JWT within the leeway of its exp ended: %v", stream.Err())
	}

	time.Sleep(time.Until(exp.Add(leeway)) + 3*interval) // past the leeway
	offer(svc.tick)
	if stream.Receive() {
		t.Fatal("an event reached a JWT past its exp and the leeway")
	}
	if err := stream.Err(); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("the stream ended with %v, want unauthenticated saying it expired", err)
	}
}
