package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// listing answers ListTables with tables a and b.
type listing struct {
	wailv1connect.UnimplementedAdminServiceHandler
}

func (listing) ListTables(context.Context, *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	return connect.NewResponse(&wailv1.ListTablesResponse{Tables: []*wailv1.Table{{Name: "a"}, {Name: "b"}}}), nil
}

// TestListTablesWithAuthOff: with auth off, ListTables lists every table
// (the caller is anonymous and holds no grant: filtering its answer by
// grants, as with auth on, would hide them all).
func TestListTablesWithAuthOff(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux()
	Mount(mux, Services{Admin: listing{}, Events: wailv1connect.UnimplementedEventServiceHandler{}}, g.Options()...)
	srv := httptest.NewServer(g.Middleware(mux))
	t.Cleanup(srv.Close)
	resp, err := wailv1connect.NewAdminServiceClient(srv.Client(), srv.URL).ListTables(context.Background(), connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Msg.GetTables()); n != 2 {
		t.Fatalf("ListTables with auth off listed %d tables, want both", n)
	}
}

// subscribing is a Subscribe stream's connection whose client asks for
// table t, and which counts what it sends.
type subscribing struct {
	connect.StreamingHandlerConn
	sent int
}

func (s *subscribing) Spec() connect.Spec {
	return connect.Spec{Procedure: wailv1connect.EventServiceSubscribeProcedure, StreamType: connect.StreamTypeServer}
}
func (s *subscribing) Peer() connect.Peer { return connect.Peer{Addr: "127.0.0.1:1"} }
func (s *subscribing) Receive(m any) error {
	proto.Merge(m.(proto.Message), &wailv1.SubscribeRequest{Table: "t"})
	return nil
}
func (s *subscribing) Send(any) error { s.sent++; return nil }

// TestNarrowedGrantRefusesTheNextSend: a Subscribe stream whose token
// lost consume on its table is refused at its next send once the check
// is due, permission_denied, and the event is not sent: the stream's
// request is authorized again with the grants in force, not only by the
// watch that ends a quiet stream (which runs on its own ticker and could
// let events through meanwhile).
func TestNarrowedGrantRefusesTheNextSend(t *testing.T) {
	t.Parallel()
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = 10 * time.Millisecond },
		"reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
	r := httptest.NewRequest(http.MethodPost, wailv1connect.EventServiceSubscribeProcedure, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	id := g.authenticate(r)
	if id.err != nil {
		t.Fatal(id.err)
	}
	conn := &subscribing{}
	c := &authorizedConn{StreamingHandlerConn: conn, ctx: context.WithValue(context.Background(), identityKey{}, id), g: g}
	if err := c.Receive(&wailv1.SubscribeRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(&wailv1.SubscribeResponse{}); err != nil || conn.sent != 1 {
		t.Fatalf("an event of t: %v (sent %d)", err, conn.sent)
	}
	tf.Tokens[0].Grants = []string{"consume:u"}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	for { // until the change took effect: a new call may not read t
		e, err := g.verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if e.Grants[0] == "consume:u" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(g.recheckEvery) // the stream's next check is due
	if err := c.Send(&wailv1.SubscribeResponse{}); connect.CodeOf(err) != connect.CodePermissionDenied || conn.sent != 1 {
		t.Fatalf("an event of t after consume:t was taken away: %v (sent %d), want permission_denied and nothing sent", err, conn.sent)
	}
}

// TestJWTStreamEndsAtItsExp: a stream opened with a JWT ends once a new
// call with the token would be refused: past its exp and the leeway
// (security.auth.jwt.leeway, for an issuer's clock behind wail's), not at
// exp itself (TestJWTStreamKeepsTheLeeway) and not never.
func TestJWTStreamEndsAtItsExp(t *testing.T) {
	t.Parallel()
	const leeway = time.Second
	is := newJWTIssuer(t, "k1")
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.JWT = config.JWT{JWKSFile: is.path, Issuer: "https://idp", Leeway: leeway}
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.keys["k1"], KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "alice", Issuer: "https://idp", Expiry: jwt.NewNumericDate(exp)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, wailv1connect.EventServiceSubscribeProcedure, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	id := g.authenticate(r)
	if id.err != nil {
		t.Fatal(id.err)
	}
	if _, err := g.recheck(id); err != nil {
		t.Fatalf("before its exp: %v", err)
	}
	time.Sleep(time.Until(exp.Add(leeway)) + 100*time.Millisecond)
	if _, err := g.recheck(id); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("past its exp and the leeway: %v, want unauthenticated, expired", err)
	}
}

// TestBasicPasswordIsNotAJWT: on the schema registry a Basic password is
// a wail token; a JWT there is refused (it is taken as a bearer token
// only), whatever its signature.
func TestBasicPasswordIsNotAJWT(t *testing.T) {
	t.Parallel()
	is := newJWTIssuer(t, "k1")
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.JWT = config.JWT{JWKSFile: is.path, Issuer: "https://idp"}
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	tok := is.mint("k1", "alice")
	r := httptest.NewRequest(http.MethodGet, config.SchemaRegistryPath+"/subjects", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if id := g.authenticate(r); id.err != nil || id.principal.String() != "jwt:alice" {
		t.Fatalf("the JWT as a bearer token: %v, %v", id.principal, id.err)
	}
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:"+tok)))
	if id := g.authenticate(r); id.err == nil {
		t.Fatalf("the JWT as a Basic password: taken as %v", id.principal)
	}
}

// TestGrantsOfAPrincipalNamedTwice: security.auth.grants may name a
// principal in two entries; it has the grants of both.
func TestGrantsOfAPrincipalNamedTwice(t *testing.T) {
	t.Parallel()
	g, _, _ := newGuardWithToken(t, func(c *config.Config) {
		c.Security.Auth.Grants = append(c.Security.Auth.Grants, config.Grant{Principal: "cert:svc", Allow: []string{"consume:u"}})
	}, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	gs := g.grants[auth.Principal{Kind: auth.KindCert, Name: "svc"}]
	if !auth.Allowed(gs, auth.Read, []string{"t"}) || !auth.Allowed(gs, auth.Consume, []string{"u"}) {
		t.Fatalf("cert:svc has %v, want read:t and consume:u", gs)
	}
}

// TestCertificateExpiryEndsStream: a stream opened with a client
// certificate ends at the certificate's NotAfter, at its next check,
// though the chain checked out before (the check's answer is kept per
// certificate and CA pool, and the pool did not change).
func TestCertificateExpiryEndsStream(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "clients")
	srvPair := ca.Server(t, "wail-server")
	cfg, clientCAs, err := ServerTLS(config.TLS{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, ClientCAFile: ca.File}, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := newGuardWithToken(t, nil, "writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	g.UseClientCAs(clientCAs)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	g.now = func() time.Time { return *now.Load() }
	recheck := make(chan func() error, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recheck <- g.Rechecker(r)
	}))}
	go func() { _ = hs.Serve(tls.NewListener(ln, cfg)) }()
	defer hs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cl := ca.Client(t, "svc")
	pair, err := tls.LoadX509KeyPair(cl.CertFile, cl.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + ln.Addr().String() + "/console/api/whoami")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rc := <-recheck
	if err := rc(); err != nil {
		t.Fatalf("the stream's check before the certificate's end: %v", err)
	}
	past := pair.Leaf.NotAfter.Add(time.Second)
	now.Store(&past)
	if err := rc(); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("the stream's check past the certificate's NotAfter: %v, want unauthenticated, expired", err)
	}
}

// TestNarrowedGrantEndsConsoleTail: a long HTTP response (the console's
// event tail, admin on every table) ends at its next check once its
// token lost the permission, though the token itself stays valid.
func TestNarrowedGrantEndsConsoleTail(t *testing.T) {
	t.Parallel()
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = 10 * time.Millisecond },
		"operator", auth.Grant{Permission: auth.Admin, Tables: "*"})
	r := httptest.NewRequest(http.MethodGet, "/console/api/tail", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	id := g.authenticate(r)
	if id.err != nil {
		t.Fatal(id.err)
	}
	rc := g.Rechecker(r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	if err := rc(); err != nil {
		t.Fatalf("the tail's check with admin:*: %v", err)
	}
	tf.Tokens[0].Grants = []string{"read:*"}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	for { // until the change took effect
		e, err := g.verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if e.Grants[0] == "read:*" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(g.recheckEvery) // the tail's next check is due
	if err := rc(); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("the tail's check after admin:* was taken away: %v, want permission_denied naming admin", err)
	}
}

// TestIsRegistry: the schema registry is its path and what is under it,
// not a path that only begins with the same letters.
func TestIsRegistry(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		config.SchemaRegistryPath: true, config.SchemaRegistryPath + "/subjects": true,
		config.SchemaRegistryPath + "x": false, config.SchemaRegistryPath + "x/subjects": false, "/metrics": false,
	} {
		if got := isRegistry(path); got != want {
			t.Errorf("isRegistry(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestRegistryReadQuotaPerPrincipal: the schema registry's reads take
// from the quota of their principal, as RPCs do: two tokens on one host
// have a bucket each (by host only with no principal).
func TestRegistryReadQuotaPerPrincipal(t *testing.T) {
	t.Parallel()
	g, tokA, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = 10 * time.Millisecond },
		"a", auth.Grant{Permission: auth.Read, Tables: "t"})
	tokB, _, err := tf.Create("b", []auth.Grant{{Permission: auth.Read, Tables: "t"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	g.reads = newLimiter("read", "security.quotas.read_rate", 1, 1)
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	get := func(tok string) int {
		r := httptest.NewRequest(http.MethodGet, config.SchemaRegistryPath+"/subjects", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for { // until b's token is read
		if _, err := g.verify(tokB); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := get(tokA); code != http.StatusOK {
		t.Fatalf("a's first read: %d", code)
	}
	if code := get(tokB); code != http.StatusOK {
		t.Fatalf("b's first read, from a's host: %d, want 200 (its own quota)", code)
	}
	if code := get(tokA); code != http.StatusTooManyRequests {
		t.Fatalf("a's second read at once: %d, want 429", code)
	}
}

// TestRegistryHeadIsARead: HEAD on the schema registry needs what GET
// needs (any grant), not admin.
func TestRegistryHeadIsARead(t *testing.T) {
	t.Parallel()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if p := registryPermission(m, config.SchemaRegistryPath+"/subjects"); p != auth.Any {
			t.Errorf("%s: %s, want any", m, p)
		}
	}
}

// TestRefusalsNameTheirCause: a JWT refused because the key set cannot
// be read says so (not that the bearer tokens cannot be), and a revoked
// client certificate is refused as revoked (not as of a CA removed).
func TestRefusalsNameTheirCause(t *testing.T) {
	t.Parallel()
	err := unauthenticated(identity{err: fmt.Errorf("%w (kid %q): %w", auth.ErrKeySetUnreadable, "k1", errors.New("connection refused"))})
	if !errors.Is(err, auth.ErrKeySetUnreadable) || !strings.Contains(err.Error(), "JWTs refused") {
		t.Errorf("key set unreadable: %v", err)
	}
	p := auth.Principal{Kind: auth.KindCert, Name: "svc"}
	err = certUntrusted(p, fmt.Errorf("certificate %q %w", "svc", errCertRevoked))
	if !errors.Is(err, errCertRevoked) || strings.Contains(err.Error(), "client_ca_file") {
		t.Errorf("revoked: %v", err)
	}
	err = certUntrusted(p, errors.New("x509: certificate signed by unknown authority"))
	if !errors.Is(err, errCertUntrusted) || errors.Is(err, errCertRevoked) {
		t.Errorf("untrusted: %v", err)
	}
}

// slowWriter is a producer whose WriteStream takes a batch, waits for
// release, and tells cut whether its context ended meanwhile, then
// answers the batch.
type slowWriter struct {
	wailv1connect.UnimplementedProducerServiceHandler
	got, release chan struct{}
	cut          chan bool
}

func (s slowWriter) WriteStream(ctx context.Context, stream *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	req, err := stream.Receive()
	if err != nil {
		return err
	}
	s.got <- struct{}{}
	<-s.release
	s.cut <- ctx.Err() != nil
	return stream.Send(&wailv1.WriteStreamResponse{Seq: req.GetSeq()})
}

// TestWriteStreamBatchNotCutByRevocation: a write stream's credential is
// checked as it reads a batch, not while the batch runs: a token revoked
// while its batch is being written does not cut the write (its outcome
// would be unknown), and the batch is answered.
func TestWriteStreamBatchNotCutByRevocation(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = interval },
		"writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	svc := slowWriter{got: make(chan struct{}), release: make(chan struct{}), cut: make(chan bool, 1)}
	mux := NewMux()
	Mount(mux, Services{Producer: svc, Admin: wailv1connect.UnimplementedAdminServiceHandler{}, Events: wailv1connect.UnimplementedEventServiceHandler{}}, g.Options()...)
	srv := httptest.NewUnstartedServer(g.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := wailv1connect.NewProducerServiceClient(srv.Client(), srv.URL).WriteStream(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+tok)
	if err := stream.Send(&wailv1.WriteStreamRequest{Seq: 1, Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	<-svc.got
	tf.Revoke("writer", time.Now())
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	for { // until the revocation took effect
		if _, err := g.verify(tok); err != nil {
			break
		}
		time.Sleep(interval / 2)
	}
	time.Sleep(5 * interval) // several checks were due meanwhile
	close(svc.release)
	if <-svc.cut {
		t.Fatal("the batch's write was cut by the token's revocation while it ran")
	}
	if resp, err := stream.Receive(); err != nil || resp.GetSeq() != 1 {
		t.Fatalf("the batch's answer: %v, %v", resp, err)
	}
}

// TestRevocationOfEachChain: a revoked certificate is refused also when
// its chain is the certificate alone (a self-signed client certificate in
// the client CA file); the root is skipped only above a leaf. A
// certificate with several verified chains passes when one of them has
// no revoked certificate, whichever comes last.
func TestRevocationOfEachChain(t *testing.T) {
	t.Parallel()
	cert := func(name, issuer string, serial int64) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name}, Issuer: pkix.Name{CommonName: issuer},
			RawIssuer: []byte(issuer), SerialNumber: big.NewInt(serial)}
	}
	self := cert("svc", "svc", 1)
	leaf, good, bad, root := cert("svc", "int", 2), cert("int", "root", 3), cert("int", "root", 4), cert("root", "root", 5)
	tr := &ClientTrust{revoked: map[string]bool{
		revokedKey(self.RawIssuer, self.SerialNumber): true,
		revokedKey(bad.RawIssuer, bad.SerialNumber):   true,
	}}
	if err := tr.check([][]*x509.Certificate{{self}}); !errors.Is(err, errCertRevoked) {
		t.Errorf("a revoked self-signed certificate: %v, want errCertRevoked", err)
	}
	if err := tr.check([][]*x509.Certificate{{leaf, good, root}, {leaf, bad, root}}); err != nil {
		t.Errorf("one chain clean, the last through a revoked intermediate: %v, want nil", err)
	}
	if err := tr.check([][]*x509.Certificate{{leaf, bad, root}}); !errors.Is(err, errCertRevoked) {
		t.Errorf("the only chain through a revoked intermediate: %v, want errCertRevoked", err)
	}
}

// TestClientCAUsageNarrowed: a client CA file replaced by the same CA
// restricted to server certificates (extended key usage serverAuth) cuts
// off its client certificates on kept connections too: the chain is
// checked again for client authentication, as at a handshake.
func TestClientCAUsageNarrowed(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := func(eku ...x509.ExtKeyUsage) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clients"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign, ExtKeyUsage: eku}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	open, serverOnly := ca(), ca(x509.ExtKeyUsageServerAuth)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		open, &leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	trust := func(c *x509.Certificate) *ClientTrust {
		p := x509.NewCertPool()
		p.AddCert(c)
		return &ClientTrust{Pool: p}
	}
	var cur atomic.Pointer[ClientTrust]
	cur.Store(trust(open))
	cas := &clientCAs{trust: cur.Load}
	if err := cas.check([]*x509.Certificate{leaf}, time.Now()); err != nil {
		t.Fatalf("under the CA for any usage: %v", err)
	}
	cur.Store(trust(serverOnly))
	if err := cas.check([]*x509.Certificate{leaf}, time.Now()); err == nil {
		t.Fatal("under the CA restricted to serverAuth: the client certificate still passes")
	}
}
