package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
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
	g, tok, _ := newGuardWithToken(t, nil, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	return g, tok
}

// newGuardWithToken returns a guard with auth on (cfg changed by mutate),
// cert:svc with read:t, and a token named name with grant; tf is the
// tokens file, at path.
func newGuardWithToken(t testing.TB, mutate func(*config.Config), name string, grant auth.Grant) (g *Guard, tok string, tf tokensAt) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	cfg.Security.Auth.Grants = []config.Grant{{Principal: "cert:svc", Allow: []string{"read:t"}}}
	if mutate != nil {
		mutate(&cfg)
	}
	tf = tokensAt{TokenFile: &auth.TokenFile{}, path: filepath.Join(cfg.DataDir, "tokens.json")}
	tok, _, err := tf.Create(name, []auth.Grant{grant}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	g, err = NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g, tok, tf
}

// tokensAt is a tokens file and its path.
type tokensAt struct {
	*auth.TokenFile
	path string
}

// TestAuthenticate: what Middleware takes as the principal of a request.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	g, tok := newTestGuard(t)
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		if c.NotAfter.IsZero() {
			c.NotAfter = time.Now().Add(time.Hour)
		}
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
		{name: "lower-case scheme", header: "bearer " + tok, want: "token:writer"},
		{name: "no token", header: "Bearer", want: "malformed bearer token"},
		{name: "token and certificate: the token", header: "Bearer " + tok, tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}}), want: "token:writer"},
		{name: "certificate", tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}}), want: "cert:svc"},
		{name: "unverified certificate", tls: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "svc"}}}}, want: "anonymous"},
		{name: "certificate expired since the handshake", tls: verified(&x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, NotAfter: time.Now().Add(-time.Second)}), want: "error: the client certificate of cert:svc expired at"},
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
			mux := NewMux()
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

// TestAudit: admin operations are logged with their principal, tables and
// outcome, refused or not; token changes in the tokens file are logged
// when the server reads it again.
func TestAudit(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Security.Auth.Enabled = true
	cfg.Security.ReloadInterval = 10 * time.Millisecond
	path := cfg.TokensPath()
	tf := &auth.TokenFile{}
	tok, writer, _ := tf.Create("writer", []auth.Grant{{Permission: auth.Produce, Tables: "t"}}, time.Now())
	opsTok, _, _ := tf.Create("ops", []auth.Grant{{Permission: auth.Admin, Tables: "*"}}, time.Now())
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux()
	Mount(mux, Unimplemented(), g.Options()...)
	mux.HandleFunc("/registry/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(g.Middleware(mux))
	defer srv.Close()
	admin := wailv1connect.NewAdminServiceClient(srv.Client(), srv.URL)
	for _, token := range []string{tok, opsTok} {
		req := connect.NewRequest(&wailv1.DropTableRequest{Name: "orders"})
		req.Header().Set("Authorization", "Bearer "+token)
		_, _ = admin.DropTable(context.Background(), req)
		hr, _ := http.NewRequest(http.MethodPost, srv.URL+"/registry/subjects/orders-value/versions", strings.NewReader("{}"))
		hr.Header.Set("Authorization", "Bearer "+token)
		if resp, err := srv.Client().Do(hr); err == nil {
			resp.Body.Close()
		}
		// Reads are not audited.
		hr, _ = http.NewRequest(http.MethodGet, srv.URL+"/registry/subjects", nil)
		hr.Header.Set("Authorization", "Bearer "+token)
		if resp, err := srv.Client().Do(hr); err == nil {
			resp.Body.Close()
		}
	}
	if strings.Contains(logs.String(), "GET /registry") {
		t.Errorf("a registry read was audited:\n%s", logs.String())
	}
	for _, want := range []string{
		`msg="audit: admin operation" principal=token:writer endpoint="POST /registry/subjects/orders-value/versions" status=403`,
		`msg="audit: admin operation" principal=token:ops endpoint="POST /registry/subjects/orders-value/versions" status=418`,
		`msg="audit: admin operation" principal=token:writer procedure=/wail.v1.AdminService/DropTable tables=[orders] code=permission_denied`,
		`msg="audit: admin operation" principal=token:ops procedure=/wail.v1.AdminService/DropTable tables=[orders] code=unimplemented`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no audit line %q in:\n%s", want, logs.String())
		}
	}

	tf.Revoke(writer.ID, time.Now())
	_, made, _ := tf.Create("reader", []auth.Grant{{Permission: auth.Read, Tables: "t"}}, time.Now())
	if err := tf.Write(path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "audit: token created") {
		if time.Now().After(deadline) {
			t.Fatalf("no token audit lines after 5s:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
		_, _ = g.tokens()
	}
	for _, want := range []string{
		`msg="audit: token revoked" principal=token:writer token=` + writer.ID,
		`msg="audit: token created" principal=token:reader token=` + made.ID + ` grants=[read:t]`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no audit line %q in:\n%s", want, logs.String())
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBidiStreamAuthorized: every request message of a client or
// bidirectional stream is authorized as it is read (a later message to a
// table without the grant ends the stream with permission_denied), and
// charged to the quota. It adds a procedure to rules: not parallel.
func TestBidiStreamAuthorized(t *testing.T) {
	const proc = "/wail.v1.ProducerService/TestBidi"
	rules[proc] = auth.Produce
	defer delete(rules, proc)
	g, tok := newTestGuard(t)
	mux := NewMux()
	mux.Handle(proc, connect.NewBidiStreamHandler(proc,
		func(_ context.Context, s *connect.BidiStream[wailv1.WriteRequest, wailv1.WriteResponse]) error {
			for {
				if _, err := s.Receive(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				if err := s.Send(&wailv1.WriteResponse{}); err != nil {
					return err
				}
			}
		}, g.Options()...))
	srv := httptest.NewUnstartedServer(g.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := connect.NewClient[wailv1.WriteRequest, wailv1.WriteResponse](srv.Client(), srv.URL+proc)
	batch := func(table string, n int) *wailv1.WriteRequest {
		w := &wailv1.WriteRequest{}
		for range n {
			w.Mutations = append(w.Mutations, &wailv1.Mutation{Table: table, Key: []byte("k")})
		}
		return w
	}
	for _, tc := range []struct {
		name string
		msgs []*wailv1.WriteRequest
		code connect.Code // of the stream's end; 0: ends well
		msg  string
	}{
		{"granted", []*wailv1.WriteRequest{batch("t", 1), batch("t", 1)}, 0, ""},
		{"a later message to another table", []*wailv1.WriteRequest{batch("t", 1), batch("u", 1)}, connect.CodePermissionDenied,
			`token:writer lacks the produce permission on table "u"`},
		{"over the quota mid-stream", []*wailv1.WriteRequest{batch("t", 3), batch("t", 1)}, connect.CodeResourceExhausted, "over its write quota"},
	} {
		g.writes = newLimiter("write", "security.quotas.write_rate", 1, 3) // full
		stream := c.CallBidiStream(context.Background())
		stream.RequestHeader().Set("Authorization", "Bearer "+tok)
		var err error
		answered := 0
		for _, m := range tc.msgs {
			if err = stream.Send(m); err != nil {
				break
			}
			if _, err = stream.Receive(); err != nil {
				break
			}
			answered++
		}
		if tc.code != 0 && answered != 1 {
			t.Errorf("%s: %d messages answered before the refusal, want 1 (the refusal is mid-stream)", tc.name, answered)
		}
		if err == nil {
			_ = stream.CloseRequest()
			_, err = stream.Receive()
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		_ = stream.CloseResponse()
		if connect.CodeOf(err) != tc.code && !(tc.code == 0 && err == nil) || tc.code != 0 && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v %q", tc.name, err, tc.code, tc.msg)
		}
	}
}
