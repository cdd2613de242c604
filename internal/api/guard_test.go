package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// newTestGuard returns a guard with auth on, a token "writer" with
// produce:t, and cert:svc with read:t.
func newTestGuard(t testing.TB) (*Guard, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	cfg.Security.Auth.Grants = []config.Grant{{Principal: "cert:svc", Allow: []string{"read:t"}}}
	tf := &auth.TokenFile{}
	tok, _, err := tf.Create("writer", []auth.Grant{{Permission: auth.Produce, Tables: "t"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(filepath.Join(cfg.DataDir, "tokens.json")); err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g, tok
}

// TestAuthenticate: what Middleware takes as the principal of a request.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	g, tok := newTestGuard(t)
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	for _, tc := range []struct {
		name   string
		header string
		tls    *tls.ConnectionState
		want   string // the principal, or "error: ..." substring
	}{
		{name: "nothing", want: "anonymous"},
		{name: "token", header: "Bearer " + tok, want: "token:writer"},
		{name: "token and certificate: the token", header: "Bearer " + tok, tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}}), want: "token:writer"},
		{name: "certificate", tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}}), want: "cert:svc"},
		{name: "unverified certificate", tls: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "svc"}}}}, want: "anonymous"},
		{name: "certificate without a name", tls: verified(&x509.Certificate{}), want: "names no identity"},
		{name: "basic auth", header: "Basic YTpi", want: `is not "Bearer <token>"`},
		{name: "bad token and a good certificate: refused", header: "Bearer nope", tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}}), want: "error: malformed bearer token"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		r.TLS = tc.tls
		id := g.authenticate(r)
		got := id.String()
		if id.err != nil {
			got = "error: " + id.err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkGuardedPut is the cost the guard adds to a Put: the middleware
// (token lookup and hash), the gate and the interceptor (tables, grants),
// against a handler that does nothing, over an in-memory HTTP round trip.
func BenchmarkGuardedPut(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "auth-off"
		if on {
			name = "auth-on"
		}
		b.Run(name, func(b *testing.B) {
			g, tok := newTestGuard(b)
			g.enabled = on
			mux := http.NewServeMux()
			svc := Unimplemented()
			svc.Producer = putOK{}
			Mount(mux, svc, g.Options()...)
			srv := httptest.NewServer(g.Middleware(mux))
			defer srv.Close()
			c := wailv1connect.NewProducerServiceClient(srv.Client(), srv.URL)
			req := connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})
			req.Header().Set("Authorization", "Bearer "+tok)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Put(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type putOK struct {
	wailv1connect.UnimplementedProducerServiceHandler
}

func (putOK) Put(context.Context, *connect.Request[wailv1.PutRequest]) (*connect.Response[wailv1.PutResponse], error) {
	return connect.NewResponse(&wailv1.PutResponse{}), nil
}

// BenchmarkCheck is the guard's own work per request, without HTTP:
// authenticate (token parse, lookup, SHA-256) and authorize (tables of a
// 100-mutation batch, grants).
func BenchmarkCheck(b *testing.B) {
	g, tok := newTestGuard(b)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	req := &wailv1.WriteRequest{}
	for range 100 {
		req.Mutations = append(req.Mutations, &wailv1.Mutation{Table: "t", Key: []byte("k")})
	}
	for b.Loop() {
		id := g.authenticate(r)
		ctx := context.WithValue(context.Background(), identityKey{}, id)
		if err := g.authorize(ctx, wailv1connect.ProducerServiceWriteProcedure, req); err != nil {
			b.Fatal(err)
		}
	}
}
