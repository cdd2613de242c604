package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestJWKSStartUnread: with StartUnread, an identity provider that does
// not answer at the start (its discovery document or key set) does not
// fail NewJWTVerifier: every JWT is refused ErrKeySetUnreadable (none is
// accepted without keys), OnError is told ErrNoKeySet, and once the
// provider answers, discovery and the key set are read and JWTs verify.
// A configuration that is wrong (a discovery document naming another
// issuer, a jwks_file that is not there) still fails it.
func TestJWKSStartUnread(t *testing.T) {
	rs, _, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	var doc atomic.Pointer[string]
	good := `{"issuer": "ISSUER", "jwks_uri": "ISSUER/keys"}`
	doc.Store(&good)
	idp := issuerServer(t, set, &doc)
	var down atomic.Bool
	down.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		idp.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	// The issuer is the front's URL: the document names it.
	good = strings.ReplaceAll(`{"issuer": "FRONT", "jwks_uri": "FRONT/keys"}`, "FRONT", front.URL)
	doc.Store(&good)

	var mu sync.Mutex
	var told error
	v, err := NewJWTVerifier(JWTConfig{Issuer: front.URL, StartUnread: true, RefetchInterval: time.Nanosecond,
		OnError: func(err error) { mu.Lock(); told = err; mu.Unlock() }})
	if err != nil {
		t.Fatalf("StartUnread, the identity provider down: %v", err)
	}
	mu.Lock()
	if !errors.Is(told, ErrNoKeySet) || !strings.Contains(told.Error(), "503") {
		t.Errorf("OnError told %v; want ErrNoKeySet with the cause", told)
	}
	mu.Unlock()
	tok := sign(t, rs, map[string]any{"sub": "bob", "iss": front.URL, "exp": time.Now().Add(time.Hour).Unix()})
	if _, _, err := v.Verify(tok); !errors.Is(err, ErrKeySetUnreadable) {
		t.Fatalf("a JWT with no key set read: %v; want ErrKeySetUnreadable", err)
	}
	down.Store(false)
	if p, _, err := v.Verify(tok); err != nil || p.Name != "bob" {
		t.Fatalf("a JWT once the identity provider answers: %v %v", p, err)
	}
	mu.Lock()
	if told != nil {
		t.Errorf("OnError still told %v after a good read", told)
	}
	mu.Unlock()

	other := `{"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys"}`
	doc.Store(&other)
	if _, err := NewJWTVerifier(JWTConfig{Issuer: front.URL, StartUnread: true}); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Errorf("StartUnread, a discovery document of another issuer: %v; want the start refused", err)
	}
	if _, err := NewJWTVerifier(JWTConfig{JWKSFile: filepath.Join(t.TempDir(), "none.json"), StartUnread: true}); err == nil {
		t.Error("StartUnread, a jwks_file that is not there: accepted")
	}
}
