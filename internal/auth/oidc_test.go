package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestJWKSRun: Run reads the key set every Refresh (a key added to it is
// found without the unknown-kid read, which RefetchInterval holds back),
// keeps the last good keys when a read fails (told to OnError), and
// returns once its context ends, cutting a read that never answers.
func TestJWKSRun(t *testing.T) {
	rs, es, _ := newKeys(t)
	set := &jwks{}
	set.set(rs.public())
	const serve, fail, hang = 0, 1, 2
	var mode atomic.Int32
	hanging := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case hang:
			select {
			case hanging <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		case fail:
			http.Error(w, "down", http.StatusBadGateway)
		default:
			set.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	failed := make(chan error, 1)
	v, err := NewJWTVerifier(JWTConfig{JWKSURL: srv.URL, Refresh: 10 * time.Millisecond, RefetchInterval: time.Hour, FetchTimeout: time.Hour,
		OnError: func(err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	tok := sign(t, es, map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	if _, _, err := v.Verify(tok); err == nil {
		t.Fatal("a key not in the set verified")
	}
	set.set(rs.public(), es.public())
	waitUntil(t, "the loop read the new key", func() bool { _, _, err := v.Verify(tok); return err == nil })

	mode.Store(fail)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "502") {
			t.Fatalf("failed read reported as %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a failed read was not reported")
	}
	if _, _, err := v.Verify(tok); err != nil {
		t.Fatalf("the last good key set was dropped after a failed read: %v", err)
	}

	mode.Store(hang)
	select {
	case <-hanging:
	case <-time.After(time.Minute):
		t.Fatal("no read in a minute")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return once its context ended, with a read in flight (fetch timeout 1h)")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute passed before %s", what)
		}
	}
}
