package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KindJWT is a principal from a verified JWT: Name is its principal claim.
const KindJWT Kind = "jwt"

// JWTAlgorithms are the only signature algorithms a JWT may use: none,
// the HMAC ones (a public key used as a shared secret) and the rest are
// refused before any key is looked at.
var JWTAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// ErrJWT is a JWT that does not verify.
var ErrJWT = errors.New("JWT refused")

// ErrJWKSFileMode is a jwks_file that others than its owner may write.
var ErrJWKSFileMode = errors.New("the JWKS file is writable by others than its owner")

// ErrKeySetUnreadable is a JWT whose kid is not in the key set as last
// read while the key set cannot be read again: it cannot be checked now
// (the token may be good: a key the issuer rotated in), and package api
// answers Unavailable, which clients retry.
var ErrKeySetUnreadable = errors.New("the JWT's key cannot be checked now: its kid is not in the key set as last read, and the key set cannot be read")

// ErrNoKeySet is a key set from an identity provider (jwks_url, or
// discovery) that could not be read since the start (JWTConfig.StartUnread):
// there is no last good one, and every JWT is refused (ErrKeySetUnreadable).
var ErrNoKeySet = errors.New("no JWT key set has been read since the start; every JWT is refused (unavailable) until one is")

// JWTConfig is how JWTs are verified.
type JWTConfig struct {
	// JWKSURL or JWKSFile is the key set (RFC 7517) the signatures are
	// checked against. Without either, the key set's URL is the jwks_uri
	// of Issuer's OpenID Connect discovery document
	// (Issuer/.well-known/openid-configuration), read at the start and at
	// every Refresh.
	JWKSURL, JWKSFile string
	// Issuer and Audience, when set, must be the token's iss and one of
	// its aud.
	Issuer, Audience string
	// PrincipalClaim names the principal ("jwt:<value>"); default "sub".
	PrincipalClaim string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// Refresh is how often the key set is read again; RefetchInterval the
	// least time between two reads for a kid that is not in it.
	Refresh, RefetchInterval time.Duration
	// FetchTimeout bounds one read of JWKSURL (and of the discovery
	// document), MaxBytes its body.
	FetchTimeout time.Duration
	MaxBytes     int64
	// OnError is told when the key set cannot be read (the last good one
	// stays in use; ErrNoKeySet when there is none), and nil once it can.
	OnError func(error)
	// StartUnread: a key set read from a URL (JWKSURL, or discovery) that
	// cannot be read by NewJWTVerifier does not fail it: an identity
	// provider's outage then does not stop the start. Until a read works,
	// every JWT is refused ErrKeySetUnreadable (no key, nothing verifies),
	// Run reads again every RefetchInterval, and OnError is told
	// ErrNoKeySet. A JWKSFile, the configuration's own, must be readable,
	// and a discovery document that names another issuer still fails it.
	StartUnread bool
}

// JWTVerifier verifies JWTs against a key set it keeps fresh.
type JWTVerifier struct {
	cfg    JWTConfig
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	keys jose.JSONWebKeySet
	// skipped are the keys of the key set that cannot be used (a key type
	// or curve go-jose does not know, say: an encryption key), by kid:
	// why. They are left out, as RFC 7517 section 5 says, and named when
	// a token's kid is one of them.
	skipped map[string]string
	// readErr is the error of the last read applied (nil: it worked).
	readErr error
	jwksURL string    // JWKSURL, or the one discovery found
	fetched time.Time // last attempt
	fetches int
	// keysFrom is the read keys came from (its fetches count): a read
	// begun before it, applied after it, is not applied (an older key set
	// would bring back a key rotated out).
	keysFrom int

	// reportMu orders what OnError is told: a read's outcome is told only
	// if no read begun after it was told already (reported is its
	// count), so a failure told after a later success cannot leave the
	// key set reported unreadable.
	reportMu sync.Mutex
	reported int
	// beforeReport, when set (tests), runs between a read's outcome and
	// what OnError is told of it.
	beforeReport func(n int)
}

// NewJWTVerifier reads the key set once (it must be readable, but see
// JWTConfig.StartUnread) and returns the verifier.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = "sub"
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	v := &JWTVerifier{cfg: cfg, now: time.Now, jwksURL: cfg.JWKSURL}
	v.client = &http.Client{Timeout: cfg.FetchTimeout, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if len(via) >= 3 || r.URL.Host != via[0].URL.Host || r.URL.Scheme != via[0].URL.Scheme {
			return fmt.Errorf("the JWKS URL redirected to %s: only redirects to the same host are followed", r.URL.Redacted())
		}
		return nil
	}}
	if err := v.refresh(context.Background(), v.discovers()); err != nil {
		var ce configError
		if !cfg.StartUnread || cfg.JWKSFile != "" || errors.As(err, &ce) {
			return nil, err
		}
	}
	return v, nil
}

// discovers reports whether the key set's URL comes from the issuer's
// discovery document.
func (v *JWTVerifier) discovers() bool {
	return v.cfg.JWKSURL == "" && v.cfg.JWKSFile == "" && v.cfg.Issuer != ""
}

// Run reads the key set again every Refresh (with discovery, the
// discovery document first) until ctx ends; a read in flight is cut
// then. A failed read is told to OnError and the last good key set stays
// in use. The server runs it with its background loops and stops it at
// shutdown.
// While no key set was read (JWTConfig.StartUnread), it reads every
// RefetchInterval instead, if that is shorter.
func (v *JWTVerifier) Run(ctx context.Context) {
	if v.cfg.Refresh <= 0 {
		return
	}
	for {
		d := v.cfg.Refresh
		if !v.hasKeys() && v.cfg.RefetchInterval > 0 && v.cfg.RefetchInterval < d {
			d = v.cfg.RefetchInterval
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_ = v.refresh(ctx, v.discovers()) // told to OnError; the old keys stay
	}
}

// hasKeys reports whether a key set was read.
func (v *JWTVerifier) hasKeys() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keysFrom > 0
}

// Fetches is how many times the key set was read.
func (v *JWTVerifier) Fetches() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fetches
}

// refresh reads the key set (after the discovery document, with
// discover); on failure the last good one stays.
func (v *JWTVerifier) refresh(ctx context.Context, discover bool) error {
	v.mu.Lock()
	v.fetched = v.now()
	v.fetches++
	n := v.fetches
	v.mu.Unlock()
	var err error
	if discover {
		err = v.discover(ctx)
	}
	var ks jose.JSONWebKeySet
	var skipped map[string]string
	if err == nil {
		ks, skipped, err = v.read(ctx)
	}
	v.mu.Lock()
	superseded := v.keysFrom > n // a read begun later was applied already
	if err == nil && !superseded {
		v.keys, v.skipped, v.keysFrom = ks, skipped, n
	}
	told := err
	if err != nil && v.keysFrom == 0 {
		told = fmt.Errorf("%w: %w", ErrNoKeySet, err)
	}
	if !superseded {
		v.readErr = told
	}
	v.mu.Unlock()
	if !superseded {
		v.report(n, told)
	}
	return err
}

// report tells OnError the outcome of read n, unless a read begun after
// it was told already.
func (v *JWTVerifier) report(n int, err error) {
	if v.beforeReport != nil {
		v.beforeReport(n)
	}
	if v.cfg.OnError == nil {
		return
	}
	v.reportMu.Lock()
	defer v.reportMu.Unlock()
	if n < v.reported {
		return
	}
	v.reported = n
	v.cfg.OnError(err)
}

func (v *JWTVerifier) read(ctx context.Context) (jose.JSONWebKeySet, map[string]string, error) {
	var body []byte
	var err error
	src := v.cfg.JWKSFile
	if src != "" {
		body, err = readLimited(func() (io.ReadCloser, error) { return openKeySetFile(src) }, v.cfg.MaxBytes)
	} else {
		v.mu.Lock()
		src = v.jwksURL
		v.mu.Unlock()
		body, err = v.get(ctx, src)
	}
	var ks jose.JSONWebKeySet
	var skipped map[string]string
	if err == nil {
		ks, skipped, err = parseKeySet(body)
	}
	if err != nil {
		return ks, nil, fmt.Errorf("JWKS %s: %w", Redacted(src), err)
	}
	return ks, skipped, nil
}

// openKeySetFile opens a jwks_file, refusing one that others than its
// owner may write (ErrJWKSFileMode): whoever writes it signs JWTs for any
// principal.
func openKeySetFile(path string) (*os.File, error) {
	return OpenChecked(path, ErrJWKSFileMode, 0o644)
}

// OpenChecked opens a file of credentials or trust (a JWKS file, a TLS
// client CA or CRL file), refusing one that others than its owner may
// write: the error wraps refused and says to run chmod fix. The mode
// checked is the file opened's, whatever replaces it since.
func OpenChecked(path string, refused error, fix os.FileMode) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkMode(path, fi, refused, fix)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// parseKeySet decodes a key set, leaving out (skipped: by kid, why) the
// keys that cannot be used: RFC 7517 section 5 says to ignore them, and
// identity providers publish keys besides their signing ones (X25519
// encryption keys, curves go-jose does not know). It fails when no key is
// left.
func parseKeySet(body []byte) (jose.JSONWebKeySet, map[string]string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return jose.JSONWebKeySet{}, nil, err
	}
	var ks jose.JSONWebKeySet
	var skipped map[string]string
	var why []string
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			var named struct {
				Kid string `json:"kid"`
			}
			_ = json.Unmarshal(raw, &named) // a key that is not an object has no kid
			if skipped == nil {
				skipped = map[string]string{}
			}
			skipped[named.Kid] = err.Error()
			why = append(why, fmt.Sprintf("key %d (kid %q): %v", i, named.Kid, err))
			continue
		}
		ks.Keys = append(ks.Keys, k)
	}
	if len(ks.Keys) == 0 {
		if len(why) > 0 {
			if len(why) > 3 { // a large set's every key would flood the log and /healthz
				why = append(why[:3], fmt.Sprintf("and %d more", len(why)-3))
			}
			return ks, nil, fmt.Errorf("it holds no key that can be used (%s)", strings.Join(why, "; "))
		}
		return ks, nil, errors.New("it holds no key")
	}
	return ks, skipped, nil
}

// Redacted is src (a URL, or a file) with a URL's password shown as
// xxxxx: where the key set is read from is named in the log, in /healthz
// and in configuration errors.
func Redacted(src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

// get reads url's body, within FetchTimeout and MaxBytes.
func (v *JWTVerifier) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	return readLimited(func() (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := v.client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		return resp.Body, nil
	}, v.cfg.MaxBytes)
}

func readLimited(open func() (io.ReadCloser, error), limit int64) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("it is larger than %d bytes (security.auth.jwt.max_jwks_bytes)", limit)
	}
	return b, err
}

// LooksLikeJWT reports whether a bearer token has a JWT's shape: three
// dot-separated parts, the first not a wail token's prefix.
func LooksLikeJWT(tok string) bool {
	return !strings.HasPrefix(tok, tokenPrefix) && strings.Count(tok, ".") == 2
}

// keysOf returns the keys of kid (two keys may share one: RFC 7517
// section 4.5), with refetch reading the key set again when it has none
// and the last read is at least RefetchInterval ago (Run reads it every
// Refresh).
func (v *JWTVerifier) keysOf(kid string, refetch bool) []jose.JSONWebKey {
	v.mu.Lock()
	ks := v.keys.Key(kid)
	if len(ks) == 0 && refetch && v.now().Sub(v.fetched) >= v.cfg.RefetchInterval {
		// Discovery again too if it never worked (StartUnread).
		discover := v.discovers() && v.jwksURL == ""
		v.mu.Unlock()
		_ = v.refresh(context.Background(), discover) // told to OnError; the old keys stay
		v.mu.Lock()
		ks = v.keys.Key(kid)
	}
	v.mu.Unlock()
	return ks
}

// usable reports why k cannot check a signature with alg ("": it can).
func usable(k jose.JSONWebKey, kid, alg string) string {
	switch {
	case k.Use != "" && k.Use != "sig":
		return fmt.Sprintf("key %q is not for signatures (use %q)", kid, k.Use)
	case k.Algorithm != "" && k.Algorithm != alg:
		return fmt.Sprintf("the JWT's alg %s is not its key %q's (%s)", alg, kid, k.Algorithm)
	}
	return ""
}

// KeySet describes the key set a verifier holds (`wail doctor` prints
// it).
type KeySet struct {
	// Source is where it was read: the URL (a password shown as xxxxx)
	// or the file.
	Source string
	// Signing counts the keys that can check a signature (use "sig" or
	// none).
	Signing int
	// Left are the keys that cannot: "kid K: why", sorted.
	Left []string
}

// KeySet describes the key set held now.
func (v *JWTVerifier) KeySet() KeySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	ks := KeySet{Source: v.cfg.JWKSFile}
	if ks.Source == "" {
		ks.Source = Redacted(v.jwksURL)
	}
	for _, k := range v.keys.Keys {
		if k.Use != "" && k.Use != "sig" {
			ks.Left = append(ks.Left, fmt.Sprintf("kid %q: not for signatures (use %q)", k.KeyID, k.Use))
			continue
		}
		ks.Signing++
	}
	for kid, why := range v.skipped {
		ks.Left = append(ks.Left, fmt.Sprintf("kid %q: %s", kid, why))
	}
	slices.Sort(ks.Left)
	return ks
}

// lastReadErr is the error of the last read of the key set (nil: it
// worked).
func (v *JWTVerifier) lastReadErr() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.readErr
}

// skippedKey says why the key set's key kid is left out, if it is.
func (v *JWTVerifier) skippedKey(kid string) (why string, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	why, ok = v.skipped[kid]
	return why, ok
}

// Verify checks tok and returns its principal and expiry.
func (v *JWTVerifier) Verify(tok string) (Principal, time.Time, error) {
	p, exp, err := v.verify(tok, true)
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %w", ErrJWT, err)
	}
	return p, exp, nil
}

// Reverify checks again a token Verify accepted, against the key set as
// last read and without reading it (a stream's credential, checked as it
// goes): a key removed from the key set since (rotated out, after a
// compromise say) no longer verifies its tokens.
func (v *JWTVerifier) Reverify(tok string) error {
	if _, _, err := v.verify(tok, false); err != nil {
		return fmt.Errorf("%w: %w", ErrJWT, err)
	}
	return nil
}

// verify checks tok; with reading, a kid not in the key set makes it read
// again (at most every RefetchInterval), else a kid not in it is one
// rotated out of it since tok was first verified.
func (v *JWTVerifier) verify(tok string, reading bool) (Principal, time.Time, error) {
	t, err := jwt.ParseSigned(tok, JWTAlgorithms)
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("not a signed JWT with alg RS256, ES256 or EdDSA: %w", err)
	}
	if len(t.Headers) != 1 {
		return Principal{}, time.Time{}, errors.New("a JWT has one signature")
	}
	h := t.Headers[0]
	if h.KeyID == "" {
		return Principal{}, time.Time{}, errors.New("the JWT header has no kid")
	}
	ks := v.keysOf(h.KeyID, reading)
	if why, skipped := v.skippedKey(h.KeyID); len(ks) == 0 && skipped {
		return Principal{}, time.Time{}, fmt.Errorf("key %q of the key set (security.auth.jwt) cannot be used, and is left out: %s", h.KeyID, why)
	}
	if len(ks) == 0 && !reading {
		return Principal{}, time.Time{}, fmt.Errorf("its key %q is no longer in the key set (security.auth.jwt: removed from the JWKS, read again every refresh)", h.KeyID)
	}
	if len(ks) == 0 {
		if err := v.lastReadErr(); err != nil {
			return Principal{}, time.Time{}, fmt.Errorf("%w (kid %q; the jwks condition of /healthz says why): %w", ErrKeySetUnreadable, h.KeyID, err)
		}
		return Principal{}, time.Time{}, fmt.Errorf("kid %q is not in the key set (security.auth.jwt): was the token signed by the configured issuer?", h.KeyID)
	}
	// The keys of the kid that may check this alg's signature, each tried:
	// every key of the set is the issuer's.
	var why string
	tried := 0
	for _, k := range ks {
		if w := usable(k, h.KeyID, h.Algorithm); w != "" {
			why = w
			continue
		}
		tried++
		if err = t.Claims(k.Key); err == nil { // the signature alone
			break
		}
	}
	switch {
	case tried == 0 && len(ks) == 1:
		return Principal{}, time.Time{}, errors.New(why)
	case tried == 0:
		return Principal{}, time.Time{}, fmt.Errorf("none of the %d keys of kid %q is for signatures with alg %s (%s)", len(ks), h.KeyID, h.Algorithm, why)
	case err != nil && tried == 1:
		return Principal{}, time.Time{}, fmt.Errorf("the signature does not verify with key %q: %w", h.KeyID, err)
	case err != nil:
		return Principal{}, time.Time{}, fmt.Errorf("the signature does not verify with any of the %d keys of kid %q: %w", tried, h.KeyID, err)
	}
	// Verified above: the claims are decoded apart, so that one of the
	// wrong type is not taken for a signature that does not verify.
	var std jwt.Claims
	var all map[string]any
	if err := t.UnsafeClaimsWithoutVerification(&std, &all); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("the signature verifies, but its claims do not decode "+
			"(iss and sub are strings, aud a string or strings, exp, nbf and iat numbers): %w", err)
	}
	if std.Expiry == nil {
		return Principal{}, time.Time{}, errors.New("the JWT has no exp claim")
	}
	exp := jwt.Expected{Issuer: v.cfg.Issuer, Time: v.now()}
	if v.cfg.Audience != "" {
		exp.AnyAudience = jwt.Audience{v.cfg.Audience}
	}
	if err := std.ValidateWithLeeway(exp, v.cfg.Leeway); err != nil {
		return Principal{}, time.Time{}, claimError(err, std, v.cfg)
	}
	name, _ := all[v.cfg.PrincipalClaim].(string)
	if err := checkName(name); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("the principal claim %q: %w", v.cfg.PrincipalClaim, err)
	}
	return Principal{Kind: KindJWT, Name: name}, std.Expiry.Time(), nil
}

// claimError says which claim failed and what it holds.
func claimError(err error, c jwt.Claims, cfg JWTConfig) error {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("it expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return fmt.Errorf("it is not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Errorf("it is issued in the future (%s)", c.IssuedAt.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return fmt.Errorf("issuer %q is not %q (security.auth.jwt.issuer)", c.Issuer, cfg.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("audience %q does not include %q (security.auth.jwt.audience)", []string(c.Audience), cfg.Audience)
	}
	return err
}
