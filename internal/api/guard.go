package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// Where authentication and authorization happen. Every request to the API
// port passes Guard.Middleware first: it finds the principal (a bearer
// token, checked against the tokens file, else a client certificate that
// TLS verified against the client CA) and answers the HTTP endpoints
// itself (/healthz open, /metrics with the metrics permission, any other
// non-RPC path refused). An RPC then passes the request gate (no
// principal: Unauthenticated, before the request is even read; no rule:
// PermissionDenied) and the interceptor (the permission its rule names on
// every table the request names, else PermissionDenied naming it). With
// auth off, every request is let through as before, and admin operations
// are still audited, as from "anonymous".

// Guard authenticates and authorizes the requests of the API.
type Guard struct {
	enabled bool
	tokens  *auth.Watched[*auth.TokenFile] // nil with auth off
	grants  map[auth.Principal][]auth.Grant
	audit   *slog.Logger
	// writes and reads are the quotas (quota.go); nil: none.
	writes, reads *limiter
	now           func() time.Time
}

// GuardOptions are what NewGuard needs besides the configuration.
type GuardOptions struct {
	// Logger gets the audit lines (one per admin operation, with its
	// principal and outcome) and reloads of the tokens file.
	Logger *slog.Logger
	// OnTokensError is told when the tokens file cannot be read (the last
	// good one stays in use), and nil once it can.
	OnTokensError func(error)
}

// NewGuard returns the guard of cfg.Security; with auth on it reads the
// tokens file (a missing one holds no token).
func NewGuard(cfg *config.Config, o GuardOptions) (*Guard, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	q := cfg.Security.Quotas
	g := &Guard{enabled: cfg.Security.Auth.Enabled, audit: o.Logger, grants: map[auth.Principal][]auth.Grant{}, now: time.Now,
		writes: newLimiter("write", "security.quotas.write_rate", q.WriteRate, q.WriteBurst),
		reads:  newLimiter("read", "security.quotas.read_rate", q.ReadRate, q.ReadBurst)}
	for _, cg := range cfg.Security.Auth.Grants {
		p, err := auth.ParsePrincipal(cg.Principal)
		if err != nil {
			return nil, err
		}
		gs, err := auth.ParseGrants(cg.Allow)
		if err != nil {
			return nil, err
		}
		g.grants[p] = append(g.grants[p], gs...)
	}
	if !g.enabled {
		return g, nil
	}
	path := cfg.TokensPath()
	var last *auth.TokenFile
	var err error
	g.tokens, err = auth.Watch([]string{path}, cfg.Security.ReloadInterval, func() (*auth.TokenFile, error) {
		tf, err := auth.ReadTokenFile(path)
		if err == nil {
			g.auditTokens(path, last, tf)
			last = tf
		}
		return tf, err
	}, o.OnTokensError)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return g, nil
}

// Enabled reports whether auth is on.
func (g *Guard) Enabled() bool { return g.enabled }

// identity is who a request comes from, as Middleware found.
type identity struct {
	principal auth.Principal // zero: anonymous
	grants    []auth.Grant
	err       error // a bearer token that did not check out
}

func (id identity) String() string {
	if id.principal.IsZero() {
		return "anonymous"
	}
	return id.principal.String()
}

type identityKey struct{}

func identityOf(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// authenticate finds the principal of r: its bearer token if it has one
// (a bad one is an error, not a fall back to the certificate), else its
// verified client certificate.
func (g *Guard) authenticate(r *http.Request) identity {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") { // the scheme is case-insensitive (RFC 6750)
			return identity{err: errors.New(`the Authorization header is not "Bearer <token>"`)}
		}
		if g.tokens == nil {
			return identity{err: errors.New("this server has no tokens (auth is off)")}
		}
		e, err := g.tokens.Get().Verify(strings.TrimSpace(tok))
		if err != nil {
			return identity{err: err}
		}
		p := e.Principal()
		gs, _ := auth.ParseGrants(e.Grants) // checked when the file was read
		return identity{principal: p, grants: append(gs, g.grants[p]...)}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		p, ok := auth.CertIdentity(r.TLS.VerifiedChains[0][0])
		if !ok {
			return identity{err: errors.New("the client certificate names no identity (no common name, URI or DNS SAN)")}
		}
		return identity{principal: p, grants: g.grants[p]}
	}
	return identity{}
}

// Endpoint is the permission of an HTTP endpoint that is not an RPC: Read
// for GET and HEAD, Write for the other methods; Open needs no principal.
type Endpoint struct {
	Open        bool
	Read, Write auth.Permission
}

// endpoints are the HTTP endpoints besides the RPCs, by path, or by path
// prefix for a pattern ending in "/". Any other path is refused when auth
// is on, and a route on the mux without an entry fails TestAuthMatrix.
var endpoints = map[string]Endpoint{
	"/healthz": {Open: true}, // load balancers and orchestrators probe it
	"/metrics": {Read: auth.Metrics, Write: auth.Metrics},
}

// Endpoints returns the HTTP endpoints that are not RPCs and their
// permissions.
func Endpoints() map[string]Endpoint { return endpoints }

// endpointOf returns the endpoint of path: its own entry, else the longest
// prefix entry ("/x/") it is under.
func endpointOf(path string) (Endpoint, bool) {
	if e, ok := endpoints[path]; ok {
		return e, true
	}
	best, found := "", false
	for p := range endpoints {
		if strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) && len(p) > len(best) {
			best, found = p, true
		}
	}
	return endpoints[best], found
}

// Covered reports whether a mux pattern ("/metrics", "/wail.v1.X/",
// "GET /x/{id}") has a permission: a service of wail.v1, or an endpoint.
func Covered(pattern string) bool {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if isProcedure(pattern) {
		return true
	}
	_, ok := endpointOf(pattern)
	return ok
}

// Middleware authenticates every request, answers the HTTP endpoints'
// refusals itself, and hands the principal to the gate and interceptor.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := identity{}
		if g.enabled || r.TLS != nil { // with auth off, only to name the principal in audit lines
			id = g.authenticate(r)
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if !g.enabled || isProcedure(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		e, known := endpointOf(r.URL.Path)
		perm := e.Write
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			perm = e.Read
		}
		switch {
		case known && e.Open:
			next.ServeHTTP(w, r)
		case id.err != nil || (known && id.principal.IsZero()):
			w.Header().Set("WWW-Authenticate", `Bearer realm="wail"`)
			http.Error(w, unauthenticated(id).Error(), http.StatusUnauthorized)
		case !known || perm == "":
			http.Error(w, fmt.Sprintf("%s %s: no permission is mapped to this endpoint (internal/api endpoints); refused", r.Method, r.URL.Path), http.StatusForbidden)
		case !auth.Allowed(id.grants, perm, nil):
			http.Error(w, fmt.Sprintf("%s lacks the %s permission for %s %s (grant %s)", id, perm, r.Method, r.URL.Path, perm), http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func isProcedure(path string) bool { return strings.HasPrefix(path, "/wail.v1.") }

// unauthenticated is the error for a request without a valid principal.
func unauthenticated(id identity) error {
	if id.err != nil {
		return fmt.Errorf("%w (`wail token ls` lists the tokens; `wail token create` makes one)", id.err)
	}
	return errors.New("this API needs a bearer token (WAIL_TOKEN or --token-file; Authorization: Bearer) or a client certificate")
}

// Options are the handler options that apply the guard to every RPC: the
// request gate (authentication) and the interceptor (authorization, audit).
func (g *Guard) Options() []connect.HandlerOption {
	return []connect.HandlerOption{connect.WithRequestGate(g.gate), connect.WithInterceptors(interceptor{g})}
}

// gate refuses an RPC before its request is read: no principal, or a
// procedure that no rule maps.
func (g *Guard) gate(ctx context.Context, spec connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
	if !g.enabled {
		return ctx, nil
	}
	id := identityOf(ctx)
	if id.err != nil || id.principal.IsZero() {
		return ctx, connect.NewError(connect.CodeUnauthenticated, unauthenticated(id))
	}
	if _, ok := rules[spec.Procedure]; !ok {
		return ctx, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s: no permission is mapped to this procedure (internal/api rules); refused", spec.Procedure))
	}
	return ctx, nil
}

// authorize checks that the caller may run procedure on the tables req
// names.
func (g *Guard) authorize(ctx context.Context, procedure string, req any) error {
	if !g.enabled {
		return nil
	}
	id := identityOf(ctx)
	perm, ok := rules[procedure]
	if !ok { // the gate refused it already; never let one through
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s: no permission is mapped to this procedure; refused", procedure))
	}
	var tables []string
	if m, ok := req.(proto.Message); ok {
		tables = tablesOf(m)
	}
	for _, t := range tables {
		if !auth.Allowed(id.grants, perm, []string{t}) {
			return connect.NewError(connect.CodePermissionDenied, denied(id, perm, t))
		}
	}
	if len(tables) == 0 && !auth.Allowed(id.grants, perm, nil) {
		return connect.NewError(connect.CodePermissionDenied, denied(id, perm, "*"))
	}
	return nil
}

func denied(id identity, perm auth.Permission, table string) error {
	if perm == auth.Any {
		return fmt.Errorf("%s has no permission on table %q (grant one, e.g. read:%s)", id, table, table)
	}
	return fmt.Errorf("%s lacks the %s permission on table %q (grant %s:%s)", id, perm, table, perm, table)
}

// interceptor authorizes each RPC once its request is read, filters
// ListTables to the tables the caller has a grant on, and audits admin
// operations.
type interceptor struct{ g *Guard }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		proc := req.Spec().Procedure
		start := time.Now()
		err := i.g.authorize(ctx, proc, req.Any())
		if err == nil {
			err = i.g.charge(ctx, proc, req.Peer(), req.Any())
		}
		var resp connect.AnyResponse
		if err == nil {
			resp, err = next(ctx, req)
		}
		if err == nil && i.g.enabled && proc == wailv1connect.AdminServiceListTablesProcedure {
			i.g.filterTables(ctx, resp.Any())
		}
		i.g.auditRPC(ctx, proc, req.Any(), start, err)
		return resp, err
	}
}

func (interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &authorizedConn{StreamingHandlerConn: conn, ctx: ctx, g: i.g})
	}
}

// authorizedConn authorizes each request message of a stream as it is
// read (a server stream reads one).
type authorizedConn struct {
	connect.StreamingHandlerConn
	ctx context.Context
	g   *Guard
}

func (c *authorizedConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	if err := c.g.authorize(c.ctx, c.Spec().Procedure, m); err != nil {
		return err
	}
	return c.g.charge(c.ctx, c.Spec().Procedure, c.Peer(), m)
}

// charge takes a call's cost from its caller's quota: a write's
// mutations, or one read.
func (g *Guard) charge(ctx context.Context, procedure string, peer connect.Peer, req any) error {
	var l *limiter
	cost := 1.0
	switch rules[procedure] {
	case auth.Produce:
		l = g.writes
		if m, ok := req.(proto.Message); ok {
			cost = float64(max(1, mutations(m)))
		}
	case auth.Read, auth.Consume:
		l = g.reads
	}
	if l == nil {
		return nil
	}
	who := identityOf(ctx).String()
	if who == "anonymous" {
		who = "client " + clientHost(peer.Addr)
	}
	if wait, ok := l.take(who, cost, g.now()); !ok {
		return l.exhausted(who, wait)
	}
	return nil
}

// mutations is the length of a request's repeated message field (a
// batch), 0 if it has none.
func mutations(m proto.Message) int {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); f.IsList() && f.Kind() == protoreflect.MessageKind {
			return r.Get(f).List().Len()
		}
	}
	return 0
}

// clientHost is the host of a peer address.
func clientHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

func (g *Guard) filterTables(ctx context.Context, resp any) {
	out, ok := resp.(*wailv1.ListTablesResponse)
	if !ok {
		return
	}
	id := identityOf(ctx)
	kept := out.Tables[:0]
	for _, t := range out.Tables {
		if auth.Allowed(id.grants, auth.Any, []string{t.GetName()}) {
			kept = append(kept, t)
		}
	}
	out.Tables = kept
}

// auditTokens logs the token changes between two readings of the tokens
// file (none at the first): made with `wail token` on the server host,
// they take effect here.
func (g *Guard) auditTokens(path string, before, after *auth.TokenFile) {
	if before == nil {
		return
	}
	was := map[string]auth.TokenEntry{}
	for _, e := range before.Tokens {
		was[e.ID] = e
	}
	for _, e := range after.Tokens {
		old, ok := was[e.ID]
		delete(was, e.ID)
		switch {
		case !ok:
			g.audit.Info("audit: token created", "principal", e.Principal().String(), "token", e.ID, "grants", e.Grants, "tokens_file", path)
		case old.Revoked == nil && e.Revoked != nil:
			g.audit.Info("audit: token revoked", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
		}
	}
	for _, e := range was {
		g.audit.Info("audit: token removed", "principal", e.Principal().String(), "token", e.ID, "tokens_file", path)
	}
}

// auditRPC logs an admin operation: who, what, on which tables, and how
// it ended.
func (g *Guard) auditRPC(ctx context.Context, procedure string, req any, start time.Time, err error) {
	if rules[procedure] != auth.Admin {
		return
	}
	var tables []string
	if m, ok := req.(proto.Message); ok {
		tables = tablesOf(m)
	}
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	g.audit.Info("audit: admin operation", "principal", identityOf(ctx).String(), "procedure", procedure,
		"tables", tables, "code", code, "took", time.Since(start).Round(time.Microsecond))
}
