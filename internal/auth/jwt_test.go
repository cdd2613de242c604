package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwks is a JWKS server whose keys a test changes, counting its reads.
type jwks struct {
	mu    sync.Mutex
	keys  []jose.JSONWebKey
	reads int
}

func (j *jwks) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.reads++
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
}

func (j *jwks) set(keys ...jose.JSONWebKey) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func newKeys(t testing.TB) (rs, es, ed signingKey) {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{"rsa1", jose.RS256, r}, signingKey{"ec1", jose.ES256, e}, signingKey{"ed1", jose.EdDSA, d}
}

func sign(t testing.TB, k signingKey, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// raw builds a JWT by hand: header, claims and signature as given.
func raw(header, claims map[string]any, sig func(signed string) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	s := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return s + "." + base64.RawURLEncoding.EncodeToString(sig(s))
}

const testIssuer, testAudience = "https://idp.example", "wail"

func TestJWT(t *testing.T) {
	rs, es, ed := newKeys(t)
	other, _, _ := newKeys(t)
	other.kid = rs.kid // same kid, another key: "wrong key"
	set := &jwks{}
	set.set(rs.public(), es.public(), ed.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience,
		Leeway: 30 * time.Second, RefetchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"sub": "alice", "iss": testIssuer, "aud": []string{testAudience},
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	}
	with := func(k string, val any) map[string]any {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(rs.priv.Public())
	hs := func(s string) []byte { m := hmac.New(sha256.New, pubDER); m.Write([]byte(s)); return m.Sum(nil) }
	tampered := func() string {
		parts := strings.Split(sign(t, rs, good()), ".")
		c, _ := json.Marshal(with("sub", "mallory"))
		parts[1] = base64.RawURLEncoding.EncodeToString(c)
		return strings.Join(parts, ".")
	}()
	for _, tc := range []struct {
		name, tok, want string
	}{
		{"rs256", sign(t, rs, good()), ""},
		{"es256", sign(t, es, good()), ""},
		{"eddsa", sign(t, ed, good()), ""},
		{"within leeway", sign(t, rs, with("exp", now.Add(-10*time.Second).Unix())), ""},
		{"expired", sign(t, rs, with("exp", now.Add(-time.Minute).Unix())), "expired at"},
		{"no exp", sign(t, rs, with("exp", nil)), "no exp claim"},
		{"not yet valid", sign(t, rs, with("nbf", now.Add(time.Minute).Unix())), "not valid before"},
		{"issued in the future", sign(t, rs, with("iat", now.Add(time.Minute).Unix())), "issued in the future"},
		{"wrong issuer", sign(t, rs, with("iss", "https://evil.example")), "is not \"https://idp.example\""},
		{"wrong audience", sign(t, rs, with("aud", []string{"other"})), "does not include \"wail\""},
		{"no audience", sign(t, rs, with("aud", nil)), "does not include \"wail\""},
		{"no principal", sign(t, rs, with("sub", nil)), "principal claim \"sub\""},
		// The signature verifies: said so, not "does not verify".
		{"principal not a string", sign(t, rs, with("sub", 12)), "claims do not decode"},
		{"exp not a number", sign(t, rs, with("exp", "tomorrow")), "claims do not decode"},
		{"wrong key", sign(t, other, good()), "signature does not verify"},
		{"tampered payload", tampered, "signature does not verify"},
		{"alg none", raw(map[string]any{"alg": "none", "kid": rs.kid}, good(), func(string) []byte { return nil }), "not a signed JWT"},
		{"alg confusion HS256", raw(map[string]any{"alg": "HS256", "kid": rs.kid}, good(), hs), "not a signed JWT"},
		{"alg/key mismatch", raw(map[string]any{"alg": "ES256", "kid": rs.kid}, good(), func(string) []byte { return make([]byte, 64) }), "is not its key"},
		{"no kid", raw(map[string]any{"alg": "RS256"}, good(), func(string) []byte { return []byte{1} }), "no kid"},
		{"garbage", "a.b.c", "not a signed JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := v.Verify(tc.tok)
			if tc.want == "" {
				if err != nil || p != (Principal{Kind: KindJWT, Name: "alice"}) {
					t.Fatalf("Verify = %v, %v; want jwt:alice", p, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrJWT) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v, %v; want an ErrJWT saying %q", p, err, tc.want)
			}
		})
	}
}

// An unknown kid reads the key set again at most once per
// RefetchInterval; a key added to the set (rotation) is then accepted.
func TestJWTUnknownKidAndRotation(t *testing.T) {
	rs, es, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	v.now = func() time.Time { return clock }
	claims := map[string]any{"sub": "bob", "exp": clock.Add(24 * time.Hour).Unix()}
	tok := sign(t, es, claims)
	for range 5 {
		if _, _, err := v.Verify(tok); err == nil || !strings.Contains(err.Error(), "not in the key set") {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := v.Fetches(); got != 1 { // the first read only, the rest within the interval
		t.Fatalf("key set read %d times, want 1 (refetch rate limit)", got)
	}
	set.set(rs.public(), es.public()) // rotation: ec1 appears
	clock = clock.Add(time.Hour)
	if p, _, err := v.Verify(tok); err != nil || p.Name != "bob" {
		t.Fatalf("after rotation: %v, %v", p, err)
	}
	if got := v.Fetches(); got != 2 {
		t.Fatalf("key set read %d times, want 2", got)
	}
	// A failed read keeps the last good keys and is reported.
	var reported error
	v.cfg.OnError = func(err error) { reported = err }
	srv.Close()
	clock = clock.Add(time.Hour)
	if _, _, err := v.Verify(sign(t, signingKey{"gone", jose.ES256, es.priv}, claims)); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if reported == nil {
		t.Fatal("failed read not reported")
	}
	if _, _, err := v.Verify(tok); err != nil {
		t.Fatalf("last good key set lost: %v", err)
	}
}

func TestJWKSLimits(t *testing.T) {
	rs, _, _ := newKeys(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat(" ", 2048)))
	}))
	defer big.Close()
	if _, err := NewJWTVerifier(JWTConfig{JWKSURL: big.URL, MaxBytes: 1024}); err == nil || !strings.Contains(err.Error(), "larger than 1024") {
		t.Fatalf("oversized JWKS: %v", err)
	}
	set := &jwks{}
	set.set(rs.public())
	target := httptest.NewServer(set)
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(strings.Replace(target.URL, "127.0.0.1", "localhost", 1), http.StatusFound))
	defer redirect.Close()
	if _, err := NewJWTVerifier(JWTConfig{JWKSURL: redirect.URL}); err == nil || !strings.Contains(err.Error(), "same host") {
		t.Fatalf("redirect to another host: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	if _, err := NewJWTVerifier(JWTConfig{JWKSURL: slow.URL, FetchTimeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("a JWKS that never answers was accepted")
	}
}

func FuzzJWT(f *testing.F) {
	rs, _, _ := newKeys(f)
	set := &jwks{}
	set.set(rs.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sign(f, rs, map[string]any{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()}))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		p, _, err := v.Verify(tok)
		if err == nil && (p.Kind != KindJWT || checkName(p.Name) != nil) {
			t.Fatalf("accepted %q as %v", tok, p)
		}
		if err != nil && !errors.Is(err, ErrJWT) {
			t.Fatalf("error not ErrJWT: %v", err)
		}
	})
}

// gatedJWKS holds the first read of the key set after arm until release,
// the keys already read: a refresh that read them before a rotation and
// applies them after it.
type gatedJWKS struct {
	*jwks
	armed    atomic.Bool
	read     chan struct{}
	released chan struct{}
}

func (g *gatedJWKS) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	g.jwks.mu.Lock()
	g.jwks.reads++
	keys := g.jwks.keys
	g.jwks.mu.Unlock()
	if g.armed.CompareAndSwap(true, false) {
		close(g.read)
		<-g.released
	}
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
}

// TestRotationDuringRefresh: the periodic refresh read the key set before
// the issuer rotated a key out, and a token of the new key read it again
// meanwhile (unknown kid); the older read, applied last, does not bring
// the key rotated out back (it did: tokens it signed were accepted again,
// and the new key's refused, until the next refresh).
func TestRotationDuringRefresh(t *testing.T) {
	rs, es, _ := newKeys(t)
	set := &gatedJWKS{jwks: &jwks{}, read: make(chan struct{}), released: make(chan struct{})}
	set.set(rs.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, RefetchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	var clockMu sync.Mutex
	v.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	claims := map[string]any{"sub": "bob", "exp": clock.Add(24 * time.Hour).Unix()}
	set.armed.Store(true)
	refreshed := make(chan error, 1)
	go func() { refreshed <- v.refresh(context.Background(), false) }() // Run's
	<-set.read                                                          // that refresh has read {rs}
	set.set(es.public())                                                // rotation: rs out, es in
	clockMu.Lock()
	clock = clock.Add(time.Hour)
	clockMu.Unlock()
	if p, _, err := v.Verify(sign(t, es, claims)); err != nil || p.Name != "bob" {
		t.Fatalf("the new key's token: %v, %v", p, err)
	}
	close(set.released)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(sign(t, rs, claims)); err == nil {
		t.Fatal("a token of the key rotated out was accepted after a stale refresh")
	}
	if _, _, err := v.Verify(sign(t, es, claims)); err != nil {
		t.Fatalf("the new key's token refused after a stale refresh: %v", err)
	}
}

// TestReportsInOrder: a failed read whose outcome was told to OnError
// after a later read had succeeded and been told left the key set
// reported unreadable (degraded on /healthz) although it read again; an
// outcome is told only if no later read's was.
func TestReportsInOrder(t *testing.T) {
	rs, _, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	var mu sync.Mutex
	var told []error
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, OnError: func(err error) {
		mu.Lock()
		told = append(told, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	first := v.Fetches() + 1
	v.beforeReport = func(n int) {
		if n == first {
			close(held)
			<-release
		}
	}
	set.set() // no key: the read fails
	failed := make(chan error, 1)
	go func() { failed <- v.refresh(context.Background(), false) }()
	<-held // it failed, and is about to tell
	set.set(rs.public())
	if err := v.refresh(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-failed; err == nil {
		t.Fatal("the read of an empty key set succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) == 0 || told[len(told)-1] != nil {
		t.Fatalf("told %v: the last outcome told is the earlier read's failure, after the later read succeeded", told)
	}
}

// TestReverify: a stream's JWT checked again verifies against the key set
// as last read, never reading it (a stream per reload_interval must not
// make wail hammer the identity provider): a key rotated out of the set,
// or replaced under the same kid, no longer verifies the token.
func TestReverify(t *testing.T) {
	rs, es, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public(), es.public())
	srv := httptest.NewServer(set)
	defer srv.Close()
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, es, map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	if _, _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		keys []jose.JSONWebKey
		want string // "": verifies
	}{
		{"key kept", []jose.JSONWebKey{rs.public(), es.public()}, ""},
		{"key rotated out", []jose.JSONWebKey{rs.public()}, `its key "ec1" is no longer in the key set`},
		{"another key under its kid", []jose.JSONWebKey{rs.public(), signingKey{"ec1", jose.ES256, other}.public()}, "does not verify"},
	} {
		set.set(tc.keys...)
		if err := v.refresh(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		reads := v.Fetches()
		err := v.Reverify(tok)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrJWT) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if v.Fetches() != reads {
			t.Errorf("%s: Reverify read the key set", tc.name)
		}
	}
}
