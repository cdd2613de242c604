package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store"
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
// are still audited, as from "anonymous", and only a request whose Host
// wail answers to is let through (host.go: DNS rebinding).

// Guard authenticates and authorizes the requests of the API.
type Guard struct {
	enabled bool
	// tokens returns the bearer tokens in force (nil with auth off): the
	// tokens file's, or the catalog's as refreshed (catalog.go).
	tokens func() (*auth.TokenFile, error)
	// fromCatalog is set with security.auth.tokens_source catalog;
	// refreshed once the server gives the guard its store (UseTokenStore).
	fromCatalog *catalogTokens
	grants      map[auth.Principal][]auth.Grant
	// jwt verifies bearer JWTs (security.auth.jwt); nil: none accepted.
	jwt   *auth.JWTVerifier
	audit *slog.Logger
	// writes and reads are the quotas (quota.go); nil: none.
	writes, reads *limiter
	now           func() time.Time
	// cas checks client certificates against the client CA pool in force
	// (certs.go); nil: no client CA.
	cas *clientCAs
	// recheckEvery is how often a stream's credential is checked again
	// (security.reload_interval: tokens are not read more often).
	recheckEvery time.Duration
	// hosts are the names the API port answers to with auth off (host.go).
	hosts hosts
}

// GuardOptions are what NewGuard needs besides the configuration.
type GuardOptions struct {
	// Logger gets the audit lines (one per admin operation, with its
	// principal and outcome) and reloads of the tokens file.
	Logger *slog.Logger
	// OnTokensError is told when the tokens file cannot be read (the last
	// good one stays in use), and nil once it can.
	OnTokensError func(error)
	// OnJWKSError is told when the JWT key set cannot be read (the last
	// good one stays in use), and nil once it can.
	OnJWKSError func(error)
	// OnTokensGone is told when the tokens file, read before, is removed
	// (every bearer token is refused: ErrTokensFileGone), and nil once it
	// is back and reads.
	OnTokensGone func(error)
}

// ErrTokensFileGone is a tokens file removed while the server runs: it
// holds no token then, and every bearer token is refused.
var ErrTokensFileGone = errors.New("the tokens file was removed; every bearer token is refused")

// NewGuard returns the guard of cfg.Security; with auth on it reads the
// tokens file (a missing one holds no token).
func NewGuard(cfg *config.Config, o GuardOptions) (*Guard, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	q := cfg.Security.Quotas
	g := &Guard{enabled: cfg.Security.Auth.Enabled, audit: o.Logger, grants: map[auth.Principal][]auth.Grant{}, now: time.Now,
		recheckEvery: cfg.Security.ReloadInterval, hosts: newHosts(cfg),
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
	if j := cfg.Security.Auth.JWT; j.Enabled() {
		jc := JWTConfig(j)
		jc.OnError, jc.StartUnread = o.OnJWKSError, true
		v, err := auth.NewJWTVerifier(jc)
		if err != nil {
			return nil, fmt.Errorf("auth: security.auth.jwt: %w", err)
		}
		g.jwt = v
	}
	if cfg.Security.Auth.TokensInCatalog() {
		g.fromCatalog = &catalogTokens{every: cfg.Security.Auth.Refresh(), maxStale: cfg.Security.Auth.Staleness(),
			onError: o.OnTokensError}
		g.tokens = g.fromCatalog.current
		return g, nil
	}
	path := cfg.TokensPath()
	var last *auth.TokenFile
	// read: the file was read once; gone: it was removed since.
	read, gone := false, false
	watched, err := auth.Watch([]string{path}, cfg.Security.ReloadInterval, func() (*auth.TokenFile, error) {
		_, statErr := os.Stat(path)
		missing := errors.Is(statErr, fs.ErrNotExist)
		tf, err := auth.ReadTokenFile(path)
		if err != nil {
			return tf, err
		}
		g.auditTokens(path, last, tf)
		last = tf
		switch {
		case missing && read && !gone:
			gone = true
			if o.OnTokensGone != nil {
				o.OnTokensGone(fmt.Errorf("%w: %s", ErrTokensFileGone, path))
			}
		case !missing && gone:
			gone = false
			if o.OnTokensGone != nil {
				o.OnTokensGone(nil)
			}
		}
		read = read || !missing
		return tf, nil
	}, o.OnTokensError)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	g.tokens = func() (*auth.TokenFile, error) { return watched.Get(), nil }
	return g, nil
}

// Enabled reports whether auth is on.
func (g *Guard) Enabled() bool { return g.enabled }

// RunJWKS reads the JWT key set again every security.auth.jwt.refresh
// until ctx ends (the server runs it with its background loops and stops
// it at shutdown, cutting a read in flight); without JWTs it returns at
// once. Failures go to GuardOptions.OnJWKSError.
func (g *Guard) RunJWKS(ctx context.Context) {
	if g.jwt != nil {
		g.jwt.Run(ctx)
	}
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
	if id.err != nil {
		return ctx, connect.NewError(codeOf(id.err), unauthenticated(id))
	}
	if id.principal.IsZero() {
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
	if len(tables) == 0 && !auth.Allowed(id.grants, perm, nil) && !(noWrites(req) && mayOnSomeTable(id.grants, perm)) {
		return connect.NewError(connect.CodePermissionDenied, denied(id, perm, "*"))
	}
	return nil
}

// noWrites: a write request or WriteStream batch without writes (the
// producer client's probe, whose answer tells the server's clock). It
// writes nothing, so a permission on some table is enough: with the grant
// on every table it needed, a producer whose token is scoped to its tables
// wrote without its stamp bound.
func noWrites(req any) bool {
	switch r := req.(type) {
	case *wailv1.WriteStreamRequest:
		return len(r.GetMutations()) == 0
	case *wailv1.WriteRequest:
		return len(r.GetMutations()) == 0
	}
	return false
}

// mayOnSomeTable: one of grants gives perm, on whatever tables.
func mayOnSomeTable(grants []auth.Grant, perm auth.Permission) bool {
	return slices.ContainsFunc(grants, func(g auth.Grant) bool { return g.Permission == auth.All || g.Permission == perm })
}

// denied says what id lacks to call with perm on table ("*": every
// table): the grant that would give it, unless no table can have that
// name ("Orders", "", "ord*"), which no grant would help (a grant of it
// would never match, or be a pattern): then what a table name is.
func denied(id identity, perm auth.Permission, table string) error {
	if err := store.ValidateTableName(table); err != nil && table != "*" {
		lacks := "lacks the " + string(perm) + " permission"
		if perm == auth.Any {
			lacks = "has no permission"
		}
		return fmt.Errorf("%s %s on table %q, and no grant can give it: %w", id, lacks, table, err)
	}
	if perm == auth.Any {
		return fmt.Errorf("%s has no permission on table %q (grant one, e.g. read:%s)", id, table, table)
	}
	return fmt.Errorf("%s lacks the %s permission on table %q (grant %s:%s)", id, perm, table, perm, table)
}

// interceptor authorizes each RPC once its request is read, filters
// ListTables to the tables the caller has a grant on, hides sink URLs
// from callers without admin on their table, and audits admin
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
		if err == nil && i.g.enabled {
			i.g.hideSinkURLs(ctx, resp.Any())
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
		c := &authorizedConn{StreamingHandlerConn: conn, ctx: ctx, g: i.g}
		if !i.g.enabled || conn.Spec().StreamType != connect.StreamTypeServer {
			return next(ctx, c)
		}
		wctx, end := context.WithCancelCause(ctx)
		defer end(nil)
		stopped := make(chan struct{})
		id := identityOf(ctx) // as the stream was opened: its own checks update c.ctx
		go func() { defer close(stopped); c.watch(wctx, id, end) }()
		err := next(wctx, c)
		end(nil)
		<-stopped
		if cause := context.Cause(wctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			return cause // the credential's end, not the handler's answer to its cancel
		}
		return err
	}
}

// watch checks an event stream's credential and request every
// recheckEvery while it runs and ends it (end) with the refusal: a
// stream's sends check it too, but a stream whose table is quiet sends
// nothing, and a revoked client would keep its place (a subscription, a
// consumer group's partitions) for as long as the table stayed quiet.
func (c *authorizedConn) watch(ctx context.Context, id identity, end context.CancelCauseFunc) {
	t := time.NewTicker(c.g.recheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := c.g.recheck(id)
		if err == nil {
			if req := c.watched.Load(); req != nil {
				err = c.g.authorize(context.WithValue(ctx, identityKey{}, now), c.Spec().Procedure, req)
			}
		}
		if err != nil {
			end(err)
			return
		}
	}
}

// authorizedConn authorizes each request message of a stream as it is
// read (a server stream reads one), and checks its credential again (at
// most every recheckEvery): a stream lives longer than a token. A server
// stream is checked as it sends. A write stream is checked as it reads a
// batch, before the batch runs, never as it sends an answer: a batch that
// ran is answered whatever became of the credential meanwhile (refused,
// the answer of a batch that was written made the producer report it
// refused, not written).
type authorizedConn struct {
	connect.StreamingHandlerConn
	ctx       context.Context
	g         *Guard
	recheckAt time.Time
	// req is a server stream's request (Subscribe's, Consume's), which
	// names the table it reads: authorized again at each check, so that a
	// stream whose grants were narrowed ends as a new call is refused.
	// watched is the same, for watch.
	req     any
	watched atomic.Value
}

// recheck checks the stream's credential again when it is due, and takes
// up its grants in force (a token's may have been narrowed since): the
// messages it reads from then on are authorized with them, and a server
// stream's request is authorized again.
func (c *authorizedConn) recheck() error {
	if now := c.g.now(); !now.Before(c.recheckAt) {
		id, err := c.g.recheck(identityOf(c.ctx))
		if err != nil {
			return err
		}
		c.ctx = context.WithValue(c.ctx, identityKey{}, id)
		c.recheckAt = now.Add(c.g.recheckEvery)
		if c.req != nil {
			if err := c.g.authorize(c.ctx, c.Spec().Procedure, c.req); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *authorizedConn) Send(m any) error {
	if _, answer := m.(*wailv1.WriteStreamResponse); c.g.enabled && !answer {
		if err := c.recheck(); err != nil {
			return err
		}
	}
	return c.StreamingHandlerConn.Send(m)
}

func (c *authorizedConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	req, batch := m.(*wailv1.WriteStreamRequest)
	if batch && c.g.enabled {
		if err := c.recheck(); err != nil {
			return err
		}
	}
	if err := c.g.authorize(c.ctx, c.Spec().Procedure, m); err != nil {
		if batch && connect.CodeOf(err) == connect.CodePermissionDenied {
			return c.g.refuseBatch(c.ctx, req, err)
		}
		return err
	}
	if !batch {
		c.req = m
		c.watched.Store(m)
	}
	err := c.g.charge(c.ctx, c.Spec().Procedure, c.Peer(), m)
	if batch && connect.CodeOf(err) == connect.CodeResourceExhausted {
		return overQuota(req, err)
	}
	return err
}

// refusedBatch is a WriteStream batch refused whole, answered without
// running it; the stream goes on.
type refusedBatch struct{ answer *wailv1.WriteStreamResponse }

func (r *refusedBatch) Error() string { return "a batch refused: " + r.answer.String() }

// refuseBatch answers a WriteStream batch that names a table the caller
// may not write (err) as Write refuses such a request: whole, nothing of
// it written, not charged. But per mutation, so that a client batching
// many writers' writes fails only the forbidden ones: permission_denied
// for a forbidden table's mutations, aborted (unwritten: send it again)
// for the others; and without ending the stream, so the batches after it
// are served.
func (g *Guard) refuseBatch(ctx context.Context, req *wailv1.WriteStreamRequest, err error) error {
	id := identityOf(ctx)
	perm := rules[wailv1connect.ProducerServiceWriteStreamProcedure]
	allowed := func(m *wailv1.Mutation) bool { return auth.Allowed(id.grants, perm, []string{m.GetTable()}) }
	var forbidden string
	for _, m := range req.GetMutations() {
		if !allowed(m) {
			forbidden = m.GetTable()
		}
	}
	return refused(req, err, func(m *wailv1.Mutation) *wailv1.Error {
		if !allowed(m) {
			return &wailv1.Error{Code: connect.CodePermissionDenied.String(), Message: denied(id, perm, m.GetTable()).Error()}
		}
		return &wailv1.Error{Code: connect.CodeAborted.String(),
			Message: fmt.Sprintf("not written: its batch names table %q, which %s may not write, and a batch is refused whole; send it again without that table's writes", forbidden, id)}
	})
}

// overQuota answers a WriteStream batch over the caller's write quota
// (err, from charge) as Write refuses such a request: whole, nothing of it
// written, not charged, resource_exhausted saying when to retry (the
// message, and retry_after_ms as Retry-After-Ms). But per mutation, as
// refuseBatch, and without ending the stream: the client retries the
// batch's writes after the wait on the same stream.
func overQuota(req *wailv1.WriteStreamRequest, err error) error {
	return refused(req, err, func(*wailv1.Mutation) *wailv1.Error { return errorProto(err) })
}

// refused is the answer to a batch refused whole (err), not run: each
// mutation's error as why says, or for an empty batch err as the batch's.
func refused(req *wailv1.WriteStreamRequest, err error, why func(*wailv1.Mutation) *wailv1.Error) error {
	answer := &wailv1.WriteStreamResponse{Seq: req.GetSeq()}
	muts := req.GetMutations()
	if len(muts) == 0 {
		answer.Error = errorProto(err)
		return &refusedBatch{answer}
	}
	answer.Results = make([]*wailv1.WriteResult, len(muts))
	for i, m := range muts {
		answer.Results[i] = &wailv1.WriteResult{Error: why(m)}
	}
	return &refusedBatch{answer}
}

// filterTables keeps, of a ListTables answer, the tables the caller has a
// grant on.
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

// JWTConfig is how security.auth.jwt verifies JWTs (the server's guard, and
// `wail doctor`, which reads the key set as the server would).
func JWTConfig(j config.JWT) auth.JWTConfig {
	leeway, refresh, refetch, timeout := j.Durations()
	return auth.JWTConfig{JWKSURL: j.JWKSURL, JWKSFile: j.JWKSFile, Issuer: j.Issuer, Audience: j.Audience,
		PrincipalClaim: j.PrincipalClaim, Leeway: leeway, Refresh: refresh, RefetchInterval: refetch,
		FetchTimeout: timeout, MaxBytes: j.MaxJWKSBytes}
}
