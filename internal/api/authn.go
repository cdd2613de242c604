package api

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/schemaregistry"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// identity is who a request comes from, as Middleware found.
type identity struct {
	principal auth.Principal // zero: anonymous
	grants    []auth.Grant
	err       error // a bearer token that did not check out
	// token is the bearer token (jwt when it is a JWT), notAfter the
	// client certificate's or the JWT's expiry: what a long stream is
	// checked against again (recheck).
	token, jwt string
	notAfter   time.Time
	// certs are the client certificate and the intermediates it
	// presented, when it is the principal: checked again against the
	// client CA pool in force (certs.go).
	certs []*x509.Certificate
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
		user, basic := "", false
		switch {
		case strings.EqualFold(scheme, "Bearer"): // the scheme is case-insensitive (RFC 6750)
		case strings.EqualFold(scheme, "Basic") && isRegistry(r.URL.Path):
			var err error
			if user, tok, err = basicToken(tok); err != nil {
				return identity{err: err}
			}
			basic = true
		default:
			return identity{err: errors.New(`the Authorization header is not "Bearer <token>" (nor, on ` + config.SchemaRegistryPath + `, "Basic" with a token as the password)`)}
		}
		tok = strings.TrimSpace(tok)
		if g.jwt != nil && !basic && auth.LooksLikeJWT(tok) {
			p, exp, err := g.jwt.Verify(tok)
			if err != nil {
				return identity{err: err}
			}
			return identity{principal: p, grants: g.grants[p], jwt: tok, notAfter: exp}
		}
		if g.jwt == nil && !basic && auth.LooksLikeJWT(tok) {
			return identity{err: errNoJWTs}
		}
		if g.tokens == nil {
			return identity{err: errors.New("this server has no tokens (auth is off)")}
		}
		e, err := g.verify(tok)
		if err != nil {
			return identity{err: err}
		}
		if basic && user != "" && user != e.Name {
			return identity{err: fmt.Errorf("the Basic user %q is not the name of its token (%s): give the token's name or none", user, e.ID)}
		}
		p := e.Principal()
		gs, _ := auth.ParseGrants(e.Grants) // checked when the file was read
		return identity{principal: p, grants: append(gs, g.grants[p]...), token: tok}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		p, ok := auth.CertIdentity(leaf)
		if !ok {
			return identity{err: errors.New("the client certificate names no identity (no common name, URI or DNS SAN)")}
		}
		if now := g.now(); now.After(leaf.NotAfter) {
			// Checked at the handshake only: a connection kept alive
			// past the certificate's end would keep its access.
			return identity{err: fmt.Errorf("the client certificate of %s %w at %s (this connection's handshake was before); "+
				"renew it and connect again", p, errCertExpired, leaf.NotAfter.UTC().Format(time.RFC3339))}
		}
		if err := g.cas.check(r.TLS.PeerCertificates, g.now()); err != nil {
			return identity{err: certUntrusted(p, err)}
		}
		return identity{principal: p, grants: g.grants[p], notAfter: leaf.NotAfter, certs: r.TLS.PeerCertificates}
	}
	return identity{}
}

// errNoJWTs is a bearer JWT on a server that takes none (not "malformed
// bearer token", which reads as a wail token mistyped).
var errNoJWTs = errors.New("the bearer token is a JWT, and this server takes none (security.auth.jwt is not set): " +
	"give a wail token, or set security.auth.jwt on the server")

// isRegistry reports whether path is the schema registry's, where
// clients that only speak Basic auth (Confluent's, with
// basic.auth.user.info) send a token as the password.
func isRegistry(path string) bool {
	return path == config.SchemaRegistryPath || strings.HasPrefix(path, config.SchemaRegistryPath+"/")
}

// basicToken reads the credentials of a Basic Authorization header
// (RFC 7617: base64 of user:password): the user and the password, a token.
func basicToken(cred string) (user, tok string, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", errors.New("the Basic credentials are not base64 (of user:token)")
	}
	user, tok, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New("the Basic credentials are not user:token (the password is a wail token)")
	}
	return user, tok, nil
}

// verify checks a bearer token against the tokens in force.
func (g *Guard) verify(tok string) (auth.TokenEntry, error) {
	tf, err := g.tokens()
	if err != nil {
		return auth.TokenEntry{}, err
	}
	return tf.Verify(tok)
}

// codeOf is the code of an authentication failure: Unavailable when the
// tokens, or the JWT key set for a kid not in it, could not be read (the
// client may retry; its token may be fine), else Unauthenticated.
func codeOf(err error) connect.Code {
	if errors.Is(err, auth.ErrTokensStale) || errors.Is(err, auth.ErrKeySetUnreadable) {
		return connect.CodeUnavailable
	}
	return connect.CodeUnauthenticated
}

// recheck checks again the credential a stream was opened with: a bearer
// token revoked (or removed) since, as the tokens file was last read, a
// client certificate expired since, a JWT expired since (past the leeway,
// as for a new call), or a JWT whose key left the key set as last read,
// ends it Unauthenticated, as a new call would be. It returns the identity with the grants in force now (a
// token's, as the tokens file has them: they may have changed).
func (g *Guard) recheck(id identity) (identity, error) {
	var certErr error
	if g.enabled && id.certs != nil {
		certErr = g.cas.check(id.certs, g.now())
	}
	switch {
	case !g.enabled || id.principal.IsZero():
	case id.token != "":
		e, err := g.verify(id.token)
		if err != nil {
			return id, connect.NewError(codeOf(err), unauthenticated(identity{err: err}))
		}
		gs, _ := auth.ParseGrants(e.Grants) // checked when the file was read
		id.grants = append(gs, g.grants[id.principal]...)
	case certErr != nil:
		return id, connect.NewError(connect.CodeUnauthenticated, certUntrusted(id.principal, certErr))
	case id.jwt == "" && !id.notAfter.IsZero() && g.now().After(id.notAfter):
		return id, connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("the client certificate of %s expired at %s during the stream; renew it and call again", id, id.notAfter.UTC().Format(time.RFC3339)))
	case id.jwt != "" && g.jwt != nil:
		// Its exp too, with security.auth.jwt.leeway as a new call's: a
		// JWT taken within the leeway past its exp keeps its stream until
		// the leeway is over, not ended at once as expired.
		if err := g.jwt.Reverify(id.jwt); err != nil {
			return id, connect.NewError(connect.CodeUnauthenticated,
				fmt.Errorf("the JWT of %s no longer verifies during the stream: %w; get a new token and call again (docs/operations.md \"JWTs refused\")", id, err))
		}
	}
	return id, nil
}

// Rechecker returns what checks the credential of a long HTTP response
// to r (the console's tail) again as it goes, as a stream's is (at most
// every reload_interval): a token revoked or a certificate expired since,
// or grants that no longer allow the endpoint, are an error, and the
// response must end.
func (g *Guard) Rechecker(r *http.Request) func() error {
	c := &authorizedConn{ctx: r.Context(), g: g}
	e, _ := endpointOf(r.URL.Path)
	perm := e.Permission(r.Method, r.URL.EscapedPath())
	return func() error {
		if !g.enabled {
			return nil
		}
		if err := c.recheck(); err != nil {
			return err
		}
		if id := identityOf(c.ctx); !e.Open && perm != signedIn && !auth.Allowed(id.grants, perm, nil) {
			return connect.NewError(connect.CodePermissionDenied,
				fmt.Errorf("%s lacks the %s permission for %s %s since its grants changed (grant %s)", id, perm, r.Method, r.URL.Path, grantHint(perm)))
		}
		return nil
	}
}

// Endpoint is the permission of an HTTP endpoint that is not an RPC: Read
// for GET and HEAD, Write for the other methods, or what Decide says of a
// method and escaped path; Open needs no principal.
type Endpoint struct {
	Open        bool
	Read, Write auth.Permission
	Decide      func(method, path string) auth.Permission
}

// Permission is what a request with method to path needs.
func (e Endpoint) Permission(method, path string) auth.Permission {
	switch {
	case e.Decide != nil:
		return e.Decide(method, path)
	case method == http.MethodGet || method == http.MethodHead:
		return e.Read
	}
	return e.Write
}

// endpoints are the HTTP endpoints besides the RPCs, by path, or by path
// prefix for a pattern ending in "/". Any other path is refused when auth
// is on, and a route on the mux without an entry fails TestAuthMatrix.
var endpoints = map[string]Endpoint{
	"/healthz":                      {Open: true}, // load balancers and orchestrators probe it
	"/metrics":                      {Read: auth.Metrics, Write: auth.Metrics},
	config.SchemaRegistryPath + "/": {Decide: registryPermission},
	// The console's pages are static files with no data in them (a
	// browser cannot send a bearer token when it opens a page); what they
	// show comes from the API and /console/api/, with the token the
	// console's login keeps in the tab's sessionStorage as a bearer header
	// (no cookie, so no cross-site request carries it).
	"/console/":     {Open: true},
	"/console":      {Open: true}, // the mux redirects it to /console/
	"/console/api/": {Decide: consolePermission},
}

// signedIn is met by any authenticated principal, grants or not.
const signedIn auth.Permission = "authenticated"

// consolePermission: the console's whoami needs a principal; its live
// series are the metrics'; its event tail and a key's history show the
// events of any table (admin on every table).
func consolePermission(_, path string) auth.Permission {
	switch path {
	case "/console/api/whoami":
		return signedIn
	case "/console/api/series":
		return auth.Metrics
	}
	return auth.Admin
}

// Caller returns the principal of a request that passed Middleware and
// its grants (the zero principal: anonymous).
func (g *Guard) Caller(r *http.Request) (auth.Principal, []auth.Grant) {
	id := identityOf(r.Context())
	return id.principal, id.grants
}

// registryPermission: reading the schema registry (GET, a lookup of a
// schema's id, a compatibility test) needs a grant, any; changing it
// (registering, deleting, levels, modes) is admin on every table.
func registryPermission(method, path string) auth.Permission {
	segs := strings.Split(strings.TrimPrefix(path, config.SchemaRegistryPath+"/"), "/")
	switch {
	case DotSegments(path):
		// "/compatibility/%2E%2E/subjects/x/versions" is not a
		// compatibility test wherever it is resolved.
		return auth.Admin
	case method == http.MethodGet || method == http.MethodHead:
		return auth.Any
	case method == http.MethodPost && segs[0] == "compatibility":
		return auth.Any
	case method == http.MethodPost && len(segs) == 2 && segs[0] == "subjects": // lookup
		return auth.Any
	}
	return auth.Admin
}

// DotSegments reports whether an escaped URL path, once decoded, has a
// segment that is "." or "..": also encoded ("%2E%2E", or "a%2F..%2Fb",
// whose encoded slashes make segments only once decoded), with path
// parameters ("..;", "..;x=1": Tomcat, Spring and older Jetty drop them,
// then resolve), or between backslashes (a slash to some servers), which
// routers and path.Clean leave alone but a server behind a proxy may
// resolve; or whether it does not decode.
func DotSegments(escaped string) bool {
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return true
	}
	for seg := range strings.FieldsFuncSeq(decoded, func(r rune) bool { return r == '/' || r == '\\' }) {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
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

// errCertExpired: the client certificate ran out after the connection's
// handshake.
var errCertExpired = errors.New("expired")

// certUntrusted is the refusal of p's client certificate, which no longer
// chains to the client CA pool (err: clientCAs.check's).
func certUntrusted(p auth.Principal, err error) error {
	if errors.Is(err, errCertRevoked) {
		return fmt.Errorf("the client certificate of %s: %w (listed since this connection's handshake); "+
			"connect again with a certificate that is not revoked", p, err)
	}
	return fmt.Errorf("the client certificate of %s %w (security.tls.client_ca_file changed since this connection's handshake: %v); "+
		"connect again with a certificate of a CA it holds", p, errCertUntrusted, err)
}

// Middleware authenticates every request, answers the HTTP endpoints'
// refusals itself, and hands the principal to the gate and interceptor.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.enabled && r.TLS == nil && r.URL.Path != "/healthz" && !g.hosts.allows(r.Host) {
			refuseHost(w, r)
			return
		}
		id := identity{}
		if g.enabled || r.TLS != nil { // with auth off, only to name the principal in audit lines
			id = g.authenticate(r)
		}
		if errors.Is(id.err, errCertExpired) || errors.Is(id.err, errCertUntrusted) || errors.Is(id.err, errCertRevoked) {
			// The connection ends after this answer (HTTP/2: a GOAWAY):
			// the client's next call makes a new one, whose handshake
			// presents its certificate as renewed, instead of being
			// refused on this one until it goes idle.
			w.Header().Set("Connection", "close")
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if isProcedure(r.URL.Path) { // the gate and the interceptor decide
			next.ServeHTTP(w, r)
			return
		}
		e, known := endpointOf(r.URL.Path)
		perm := e.Permission(r.Method, r.URL.EscapedPath())
		// Audited, as admin RPCs are: by a principal (a request refused
		// for want of one is no operation, and would let anyone write a
		// line per request, its path as long as a header may be), or by
		// anyone with auth off.
		if perm == auth.Admin && known && (!g.enabled || (id.err == nil && !id.principal.IsZero())) {
			aw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			defer func() { g.auditHTTP(id, r.Method, r.URL.Path, aw.code) }()
			w = aw
		}
		switch {
		case !g.enabled || (known && e.Open):
		case id.err != nil && codeOf(id.err) == connect.CodeUnavailable:
			w.Header().Set("Retry-After", "1")
			refuse(w, r, http.StatusServiceUnavailable, unauthenticated(id).Error())
			return
		case id.err != nil || (known && id.principal.IsZero()):
			w.Header().Set("WWW-Authenticate", `Bearer realm="wail"`)
			if isRegistry(r.URL.Path) {
				w.Header().Add("WWW-Authenticate", `Basic realm="wail", charset="UTF-8"`)
			}
			refuse(w, r, http.StatusUnauthorized, unauthenticated(id).Error())
			return
		case !known || perm == "":
			refuse(w, r, http.StatusForbidden, fmt.Sprintf("%s %s: no permission is mapped to this endpoint (internal/api endpoints); refused", r.Method, r.URL.Path))
			return
		case perm == signedIn:
		case !auth.Allowed(id.grants, perm, nil):
			refuse(w, r, http.StatusForbidden, fmt.Sprintf("%s lacks the %s permission for %s %s (grant %s)", id, perm, r.Method, r.URL.Path, grantHint(perm)))
			return
		}
		if known && !e.Open && perm == auth.Any && !g.chargeHTTP(w, r, id) { // a read (the schema registry's)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HealthDetail says whether the caller of a /healthz request (through
// Middleware) may see the conditions, which name tables, hosts and
// errors: with auth off, a request naming the server by a name it
// answers to (the API port's other paths refuse the others, but /healthz
// answers probes by any name; a DNS-rebinding page must not read them);
// with auth on, a principal with the metrics permission (as /metrics
// needs). Others get the state alone (what a load balancer's or
// Kubernetes' probe reads), hidden saying why.
func (g *Guard) HealthDetail(r *http.Request) (ok bool, hidden string) {
	if !g.enabled {
		if !g.answersTo(r) {
			return false, hostHidden
		}
		return true, ""
	}
	id := identityOf(r.Context())
	if id.err == nil && !id.principal.IsZero() && auth.Allowed(id.grants, auth.Metrics, nil) {
		return true, ""
	}
	return false, "their detail needs the metrics permission (a token or client certificate with a metrics grant), " +
		"or read /healthz on security.metrics_listen"
}

// refuse answers a refusal of an HTTP endpoint: plain text, or on the
// schema registry the Confluent registry's error body, which its clients
// parse (they fail on a plain-text body with a JSON error instead of the
// refusal).
func refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if !isRegistry(r.URL.Path) {
		http.Error(w, msg, status)
		return
	}
	code := status
	if status == http.StatusForbidden {
		code = schemaregistry.CodeForbidden
	}
	schemaregistry.WriteError(w, &schemaregistry.Error{Status: status, Code: code, Message: msg})
}

// grantHint is a grant that gives perm on every table.
func grantHint(perm auth.Permission) string {
	if perm == auth.Any {
		return "any permission, e.g. read:*"
	}
	return string(perm) + ":*"
}

// statusWriter remembers the status of a response, for the audit line.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func isProcedure(path string) bool { return strings.HasPrefix(path, "/wail.v1.") }

// errTokensUnreadable is the answer to a bearer token while the tokens
// cannot be read from the catalog (auth.ErrTokensStale); the server's
// /healthz (its auth condition) and log say why.
var errTokensUnreadable = fmt.Errorf("%w, or not for longer than security.auth.tokens_max_staleness: bearer tokens are refused until they can be; "+
	"retry (the server's /healthz auth condition and its log say why)", auth.ErrTokensStale)

// unauthenticated is the error for a request without a valid principal.
func unauthenticated(id identity) error {
	if errors.Is(id.err, auth.ErrKeySetUnreadable) {
		// Not id.err: it names where the key set is read from and why it
		// cannot be, and the caller is not authenticated.
		return fmt.Errorf("%w: retry (docs/operations.md \"JWTs refused\")", auth.ErrKeySetUnreadable)
	}
	if id.err != nil && codeOf(id.err) == connect.CodeUnavailable {
		// Not id.err: it names the store's error (its host, user,
		// database), and the caller is not authenticated.
		return errTokensUnreadable
	}
	if errors.Is(id.err, auth.ErrJWT) {
		return fmt.Errorf("%w (docs/operations.md \"JWTs refused\")", id.err)
	}
	if id.err != nil {
		return fmt.Errorf("%w (`wail token ls` lists the tokens; `wail token create` makes one)", id.err)
	}
	return errors.New("this API needs a bearer token (WAIL_TOKEN or --token-file; Authorization: Bearer) or a client certificate")
}
