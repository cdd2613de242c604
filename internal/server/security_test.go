package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// secured is a server with TLS, a client CA and auth on, and the tokens
// of its roles.
type secured struct {
	srv        *server.Server
	url, addr  string
	ca         *tlstest.CA
	tokensFile string
	tokens     map[string]string // by name: root (*:*), produce, consume, admin, revoked
	svcCert    tlstest.Pair      // a client certificate for cert:svc-orders
}

// startSecured starts a server with TLS (client CA optional), auth, and
// tokens: root (*:*), produce (produce:t), consume (consume:t), admin
// (admin:*, metrics), revoked (produce:t, revoked); cert:svc-orders has
// read:t and consume:t from the configuration. Table t exists with key k.
func startSecured(t *testing.T, mutate func(*config.Config)) *secured {
	t.Helper()
	s := &secured{ca: tlstest.NewCA(t, "wail-test"), tokens: map[string]string{}}
	srvPair := s.ca.Server(t, "wail-server")
	s.svcCert = s.ca.Client(t, "svc-orders")
	s.tokensFile = filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	for _, r := range []struct {
		name   string
		grants []string
	}{{"root", []string{"*:*"}}, {"produce", []string{"produce:t"}}, {"consume", []string{"consume:t"}},
		{"admin", []string{"admin:*", "metrics"}}, {"revoked", []string{"produce:t"}}} {
		gs, err := auth.ParseGrants(r.grants)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := tf.Create(r.name, gs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[r.name] = tok
	}
	tf.Revoke("revoked", time.Now())
	if err := tf.Write(s.tokensFile); err != nil {
		t.Fatal(err)
	}
	s.srv, s.url = servertest.StartServer(t, func(c *config.Config) {
		c.Security.TLS = config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: s.ca.File}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: s.tokensFile,
			Grants: []config.Grant{{Principal: "cert:svc-orders", Allow: []string{"read:t", "consume:t"}}}}
		c.Security.ReloadInterval = 20 * time.Millisecond
		if mutate != nil {
			mutate(c)
		}
	})
	s.addr = strings.TrimPrefix(s.url, "https://")
	// The token is the principal; the certificate is for servers that
	// require one.
	root := s.dial(t, client.Options{Token: s.tokens["root"], CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile})
	ctx := context.Background()
	if _, err := root.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	// DescribeSink of sink "t" (fill names it as the table); paused: it posts nothing.
	if _, err := root.Admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "t",
		Sink: &wailv1.Sink{Name: "t", Url: "http://127.0.0.1:9/"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Admin.PauseSink(ctx, connect.NewRequest(&wailv1.PauseSinkRequest{Table: "t", Name: "t"})); err != nil {
		t.Fatal(err)
	}
	return s
}

// dial returns a client of the server trusting its CA, with o's
// credentials.
func (s *secured) dial(t *testing.T, o client.Options) *client.Client {
	t.Helper()
	o.Addr, o.CAFile = s.url, s.ca.File
	o.HTTP2 = true // bidirectional streams need it
	c, err := client.Dial(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// role is a caller of the matrix and what it may do.
type role struct {
	name  string
	opts  client.Options
	authn bool                     // has a valid principal
	perms map[auth.Permission]bool // on table t (admin: on every table)
}

func (r role) allows(perm auth.Permission, table string) bool {
	switch {
	case !r.authn:
		return false
	case perm == auth.Any: // any grant on the table; ListTables (no table): any grant
		return len(r.perms) > 0 && (table == "t" || table == "" || r.perms[auth.Admin])
	case perm == auth.Admin || perm == auth.Metrics:
		return r.perms[perm] // admin:* and metrics cover every table, "" included
	}
	return r.perms[perm] && table == "t"
}

// TestAuthMatrix runs every procedure of every service of wail.v1 (from
// the service descriptors: a new RPC without a permission fails here) and
// every HTTP endpoint under each role, and checks the exact refusal:
// Unauthenticated without a valid principal, PermissionDenied naming the
// missing permission without a grant; with the grant, the call is done
// (admin calls name the table "", so that nothing is created, changed or
// dropped: not_found or invalid_argument from the handler).
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	jwts := newJWTIssuer(t)
	s := startSecured(t, jwts.configure)
	wrong := &auth.TokenFile{}
	wrongTok, _, _ := wrong.Create("root", nil, time.Now()) // well formed, never stored
	roles := []role{
		{name: "none"},
		{name: "wrong token", opts: client.Options{Token: wrongTok}},
		{name: "malformed token", opts: client.Options{Token: "hunter2"}},
		{name: "revoked token", opts: client.Options{Token: s.tokens["revoked"]}},
		{name: "produce-only", opts: client.Options{Token: s.tokens["produce"]}, authn: true, perms: map[auth.Permission]bool{auth.Produce: true}},
		{name: "consume-only", opts: client.Options{Token: s.tokens["consume"]}, authn: true, perms: map[auth.Permission]bool{auth.Consume: true}},
		{name: "admin", opts: client.Options{Token: s.tokens["admin"]}, authn: true, perms: map[auth.Permission]bool{auth.Admin: true, auth.Metrics: true}},
		{name: "mTLS identity", opts: client.Options{CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile}, authn: true,
			perms: map[auth.Permission]bool{auth.Read: true, auth.Consume: true}},
		{name: "JWT", opts: client.Options{Token: jwts.mint(t, "reader", time.Hour)}, authn: true,
			perms: map[auth.Permission]bool{auth.Read: true, auth.Consume: true}},
		{name: "expired JWT", opts: client.Options{Token: jwts.mint(t, "reader", -time.Hour)}},
	}
	// Every route of the server has a permission: a service of wail.v1 (its
	// procedures are run below) or an endpoint of api.Endpoints.
	for _, p := range server.Routes(s.srv) {
		if !api.Covered(p) {
			t.Errorf("route %q has no permission: add it to api.Endpoints (internal/api/guard.go)", p)
		}
	}
	methods := api.Methods()
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			c := s.dial(t, r.opts)
			for _, m := range methods {
				proc := api.Procedure(m)
				perm, ok := api.Rule(proc)
				if !ok {
					t.Errorf("%s has no permission (internal/api rules): it is refused for everyone", proc)
					continue
				}
				table := "t"
				if perm == auth.Admin {
					table = "" // no table: nothing is created, changed or dropped
				}
				err := call(t, c, m, table)
				code := connect.CodeOf(err)
				switch {
				case !r.authn:
					if code != connect.CodeUnauthenticated {
						t.Errorf("%s: %v, want unauthenticated", proc, err)
					}
				case !r.allows(perm, table):
					if code != connect.CodePermissionDenied || !strings.Contains(err.Error(), string(perm)) && perm != auth.Any {
						t.Errorf("%s: %v, want permission_denied naming %s", proc, err, perm)
					}
				case perm == auth.Admin:
					// Let through, on the table named "": it is not there.
					if code != connect.CodeNotFound && code != connect.CodeInvalidArgument {
						t.Errorf("%s on table \"\": %v, want not_found or invalid_argument from the handler", proc, err)
					}
				case proc == wailv1connect.EventServiceAckProcedure:
					// Let through: its member never consumed, so the
					// handler answers that it is not a member.
					if err == nil || (code != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "not a member")) {
						t.Errorf("%s: %v, want failed_precondition from the handler (not a member)", proc, err)
					}
				default:
					if err != nil {
						t.Errorf("%s: %v, want it done (%s on %q is granted)", proc, err, perm, table)
					}
				}
			}
			for path, e := range api.Endpoints() {
				want := http.StatusOK
				switch {
				case e.Open:
				case !r.authn:
					want = http.StatusUnauthorized
				case !r.allows(e.Permission(http.MethodGet, path), ""):
					want = http.StatusForbidden
				}
				if got := get(t, c, path); got != want {
					t.Errorf("GET %s: %d, want %d", path, got, want)
				}
			}
			// The schema registry: reads (a lookup, a compatibility test
			// included) need a grant, changes admin.
			for _, req := range []struct {
				method, path string
				perm         auth.Permission
			}{
				{http.MethodGet, "/registry/subjects", auth.Any},
				{http.MethodPost, "/registry/subjects/orders-value", auth.Any},
				{http.MethodPost, "/registry/compatibility/subjects/orders-value/versions", auth.Any},
				{http.MethodPost, "/registry/subjects/orders-value/versions", auth.Admin},
				{http.MethodDelete, "/registry/subjects/orders-value", auth.Admin},
				{http.MethodPut, "/registry/config", auth.Admin},
			} {
				got := do(t, c, req.method, req.path, `{"schema": ""}`)
				switch {
				case !r.authn && got != http.StatusUnauthorized:
					t.Errorf("%s %s: %d, want 401", req.method, req.path, got)
				case r.authn && !r.allows(req.perm, "") && got != http.StatusForbidden:
					t.Errorf("%s %s: %d, want 403", req.method, req.path, got)
				case r.authn && r.allows(req.perm, "") && (got == http.StatusUnauthorized || got == http.StatusForbidden):
					t.Errorf("%s %s: %d, want it let through (%s)", req.method, req.path, got, req.perm)
				}
			}
			want := http.StatusForbidden // a path that no permission maps
			if !r.authn && r.opts.Token != "" {
				want = http.StatusUnauthorized
			}
			if got := get(t, c, "/debug/pprof/"); got != want {
				t.Errorf("GET /debug/pprof/: %d, want %d", got, want)
			}
		})
	}
}

// call runs method m with a request naming table (its "table" or "name"
// field, or the table of one element of its repeated fields, with key k).
func call(t *testing.T, c *client.Client, m protoreflect.MethodDescriptor, table string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := dynamicpb.NewMessage(m.Input())
	fill(req, table)
	cl := connect.NewClient[dynamicpb.Message, dynamicpb.Message](c.HTTP, c.URL+api.Procedure(m), connect.WithSchema(m),
		connect.WithResponseInitializer(func(_ connect.Spec, msg any) error {
			*msg.(*dynamicpb.Message) = *dynamicpb.NewMessage(m.Output())
			return nil
		}))
	switch {
	case m.IsStreamingClient() && m.IsStreamingServer(): // one request, then the first answer
		stream := cl.CallBidiStream(ctx)
		defer stream.CloseResponse()
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err := stream.CloseRequest(); err != nil {
			return err
		}
		resp, err := stream.Receive()
		if err != nil {
			return err
		}
		// A WriteStream batch refused by the guard is answered per
		// mutation, and the stream goes on (internal/api refuseBatch).
		return resultError(resp.ProtoReflect())
	case m.IsStreamingClient():
		stream := cl.CallClientStream(ctx)
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		_, err := stream.CloseAndReceive()
		return err
	case m.IsStreamingServer():
		stream, err := cl.CallServerStream(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		defer stream.Close()
		if stream.Receive() { // the event of key k
			return nil
		}
		return stream.Err()
	}
	_, err := cl.CallUnary(ctx, connect.NewRequest(req))
	return err
}

// resultError is the error of an answer's first per-mutation result
// (field results, each with an error {code, message}), or of the answer
// itself (field error); nil if it has none.
func resultError(msg protoreflect.Message) error {
	fields := msg.Descriptor().Fields()
	e := fields.ByName("error")
	if rs := fields.ByName("results"); rs != nil && msg.Get(rs).List().Len() > 0 {
		first := msg.Get(rs).List().Get(0).Message()
		return resultError(first)
	}
	if e == nil || !msg.Has(e) {
		return nil
	}
	em := msg.Get(e).Message()
	var code connect.Code
	if err := code.UnmarshalText([]byte(em.Get(em.Descriptor().Fields().ByName("code")).String())); err != nil {
		return fmt.Errorf("an answer's error with an unknown code: %w", err)
	}
	return connect.NewError(code, errors.New(em.Get(em.Descriptor().Fields().ByName("message")).String()))
}

// members numbers the consumer group members fill names.
var members atomic.Int64

func fill(msg protoreflect.Message, table string) {
	fields := msg.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.IsList() && f.Kind() == protoreflect.MessageKind:
			el := msg.Mutable(f).List().NewElement()
			fill(el.Message(), table)
			msg.Mutable(f).List().Append(el)
		case f.IsList() || f.Kind() != protoreflect.StringKind && f.Kind() != protoreflect.BytesKind:
		case f.Name() == "table" || f.Name() == "name":
			msg.Set(f, protoreflect.ValueOfString(table))
		case f.Name() == "key":
			msg.Set(f, protoreflect.ValueOfBytes([]byte("k")))
		case f.Name() == "from":
			msg.Set(f, protoreflect.ValueOfString("beginning"))
		case f.Name() == "group": // consumer groups
			msg.Set(f, protoreflect.ValueOfString("g"))
		case f.Name() == "member":
			// A member of its own per call: one whose Consume ended at the
			// client may still be live at the server when the next row
			// consumes (its Consume was refused, 2 runs in 15).
			msg.Set(f, protoreflect.ValueOfString(fmt.Sprintf("m%d", members.Add(1))))
		}
	}
}

func get(t *testing.T, c *client.Client, path string) int {
	t.Helper()
	return do(t, c, http.MethodGet, path, "")
}

func do(t *testing.T, c *client.Client, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthTables: a grant on one table is no grant on another, in a batch
// neither; ListTables shows only the tables a principal has a grant on; a
// token revoked while the server runs is refused within the reload
// interval, without a restart.
func TestAuthTables(t *testing.T) {
	t.Parallel()
	s := startSecured(t, nil)
	ctx := context.Background()
	root := s.dial(t, client.Options{Token: s.tokens["root"]})
	if _, err := root.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "u"})); err != nil {
		t.Fatal(err)
	}
	p := s.dial(t, client.Options{Token: s.tokens["produce"]})
	if _, err := p.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("a"), Value: []byte("1")})); err != nil {
		t.Fatalf("produce:t cannot put to t: %v", err)
	}
	_, err := p.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "u", Key: []byte("a"), Value: []byte("1")}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), `token:produce lacks the produce permission on table "u"`) {
		t.Fatalf("put to u: %v, want permission_denied saying token:produce lacks produce on u", err)
	}
	_, err = p.Producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("b"), Value: []byte("1")}, {Table: "u", Key: []byte("b"), Value: []byte("1")}}}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a batch to t and u: %v, want permission_denied", err)
	}
	if r, err := root.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("b")})); err != nil || r.Msg.Found {
		t.Fatalf("the refused batch wrote t/b: %v %v", r, err)
	}
	ls, err := p.Admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil || len(ls.Msg.Tables) != 1 || ls.Msg.Tables[0].Name != "t" {
		t.Fatalf("ListTables as produce:t: %v %v, want t alone", ls, err)
	}
	if ls, err := root.Admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{})); err != nil || len(ls.Msg.Tables) != 2 {
		t.Fatalf("ListTables as root: %v %v, want t and u", ls, err)
	}

	tf, err := auth.ReadTokenFile(s.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	tf.Revoke("produce", time.Now())
	if err := tf.Write(s.tokensFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := p.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("a"), Value: []byte("2")}))
		if connect.CodeOf(err) == connect.CodeUnauthenticated && strings.Contains(err.Error(), "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked token still works after 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSRequired: with TLS on, plain HTTP, TLS 1.1, an untrusted server
// certificate, and (when required) a missing client certificate all fail
// at the connection; TLS 1.2 with the CA works.
func TestTLSRequired(t *testing.T) {
	t.Parallel()
	s := startSecured(t, func(c *config.Config) { c.Security.TLS.RequireClientCert = true })
	ctx := context.Background()
	other := tlstest.NewCA(t, "other").Client(t, "svc-orders")
	expired := s.ca.Expired(t, "svc-orders")
	for name, o := range map[string]client.Options{
		"no client certificate":         {Addr: s.url, CAFile: s.ca.File, Token: s.tokens["root"]},
		"plain http":                    {Addr: "http://" + s.addr, Token: s.tokens["root"]},
		"an untrusted server":           {Addr: s.url, CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile},
		"a client of another CA":        {Addr: s.url, CAFile: s.ca.File, CertFile: other.CertFile, KeyFile: other.KeyFile},
		"an expired client certificate": {Addr: s.url, CAFile: s.ca.File, CertFile: expired.CertFile, KeyFile: expired.KeyFile},
	} {
		c, err := client.Dial(o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
		// A failed handshake is unavailable (or, the client having written
		// already on HTTP/2, canceled by a broken pipe); plain HTTP on the
		// TLS port gets Go's 400 "client sent an HTTP request to an HTTPS
		// server". Never an answer of the API.
		code := connect.CodeOf(err)
		refused := code == connect.CodeUnavailable || code == connect.CodeCanceled || strings.Contains(fmt.Sprint(err), "400 Bad Request")
		if err == nil || !refused {
			t.Errorf("%s: %v, want the connection refused", name, err)
		}
	}
	old := &tls.Config{MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true} //nolint:gosec // the test of the minimum
	if conn, err := tls.Dial("tcp", s.addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake passed")
	}
	for _, protocol := range []connect.ClientOption{connect.WithGRPC(), connect.WithGRPCWeb(), connect.WithProtoJSON()} {
		mtls := s.dial(t, client.Options{CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile, HTTP2: true,
			ConnectOptions: []connect.ClientOption{protocol}})
		if _, err := mtls.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")})); err != nil {
			t.Fatalf("mTLS with read:t (%T): %v", protocol, err)
		}
	}
}

// TestQuotas: a principal over its write or read quota is refused with
// resource_exhausted and the time to wait, before anything is written;
// another principal is not held up by it; after the wait it goes on.
func TestQuotas(t *testing.T) {
	t.Parallel()
	s := startSecured(t, func(c *config.Config) {
		c.Security.Quotas = config.Quotas{WriteRate: 2, WriteBurst: 3, ReadRate: 2, ReadBurst: 2}
	})
	ctx := context.Background()
	p := s.dial(t, client.Options{Token: s.tokens["produce"]})
	batch := func(keys ...string) error {
		var muts []*wailv1.Mutation
		for _, k := range keys {
			muts = append(muts, &wailv1.Mutation{Table: "t", Key: []byte(k), Value: []byte("v")})
		}
		_, err := p.Producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
		return err
	}
	if err := batch("a", "b", "c"); err != nil {
		t.Fatalf("a batch of the burst: %v", err)
	}
	err := batch("d")
	var ce *connect.Error
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "token:produce is over its write quota") ||
		!errors.As(err, &ce) || ce.Meta().Get("Retry-After-Ms") == "" {
		t.Fatalf("over the write quota: %v, want resource_exhausted with a retry hint", err)
	}
	root := s.dial(t, client.Options{Token: s.tokens["root"], CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile})
	if r, err := root.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("d")})); err != nil || r.Msg.Found {
		t.Fatalf("the refused write was stored, or root is held up: %v %v", r, err)
	}
	wait, _ := strconv.Atoi(ce.Meta().Get("Retry-After-Ms"))
	time.Sleep(time.Duration(wait) * time.Millisecond)
	if err := batch("d"); err != nil {
		t.Fatalf("after the wait the hint gave: %v", err)
	}

	// Reads: Get and Subscribe opens share the read quota.
	m := s.dial(t, client.Options{CertFile: s.svcCert.CertFile, KeyFile: s.svcCert.KeyFile})
	for i := range 3 {
		_, err := m.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")}))
		if want := i < 2; (err == nil) != want {
			t.Fatalf("read %d: %v (burst 2)", i, err)
		}
		if i == 2 && (connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "cert:svc-orders is over its read quota")) {
			t.Fatalf("over the read quota: %v", err)
		}
	}
}

// TestMetricsListen: with auth on, security.metrics_listen serves
// /metrics and /healthz on their own port without credentials, while
// /metrics on the API port still needs them.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	s := startSecured(t, func(c *config.Config) { c.Security.MetricsListen = metricsAddr })
	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (path == "/metrics" && !strings.Contains(string(body), "wail_health_state")) {
			t.Errorf("GET %s on the metrics listener: %d %.100s", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/wail.v1.AdminService/ListTables")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener answers the API: %s", resp.Status)
	}
	if got := get(t, s.dial(t, client.Options{}), "/metrics"); got != http.StatusUnauthorized {
		t.Errorf("/metrics on the API port without a token: %d, want 401", got)
	}
}

// TestTLSHandshakeBounded: a connection that never finishes its TLS
// handshake is closed after api.read_header_timeout, not held.
func TestTLSHandshakeBounded(t *testing.T) {
	t.Parallel()
	s := startSecured(t, func(c *config.Config) { c.API.ReadHeaderTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent connection was not closed within 10s: %v", err)
	}
	t.Logf("closed after %s", time.Since(start).Round(time.Millisecond))
}
