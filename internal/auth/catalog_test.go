package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memTokens is a TokenStore in memory: a compare-and-set register, as the
// catalog's SwapTable is; fail makes Load fail.
type memTokens struct {
	mu    sync.Mutex
	doc   []byte
	swaps int
	fail  error
}

func (m *memTokens) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	return bytes.Clone(m.doc), nil
}

func (m *memTokens) Swap(_ context.Context, old, new []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bytes.Equal(m.doc, old) || (m.doc == nil) != (old == nil) {
		return false, nil
	}
	m.doc = bytes.Clone(new)
	m.swaps++
	return true, nil
}

// TestEditTokensConcurrent: edits racing on one document all land (a
// failed compare-and-set is retried on a fresh copy), none lost.
func TestEditTokensConcurrent(t *testing.T) {
	st := &memTokens{}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := EditTokens(t.Context(), st, func(tf *TokenFile) error {
				_, _, err := tf.Create(fmt.Sprintf("t%d", i), nil, time.Now())
				return err
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tf, _, err := LoadTokens(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(tf.Tokens) != n || st.swaps != n {
		t.Fatalf("%d tokens after %d swaps, want %d of each", len(tf.Tokens), st.swaps, n)
	}
}

// TestEditTokensVerifyRevoke: a token made in the catalog verifies, and
// is refused once revoked; an edit that fails saves nothing.
func TestEditTokensVerifyRevoke(t *testing.T) {
	st := &memTokens{}
	var tok string
	if _, err := EditTokens(t.Context(), st, func(tf *TokenFile) (err error) {
		tok, _, err = tf.Create("app", []Grant{{Permission: Produce, Tables: "orders"}}, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tf, _, _ := LoadTokens(t.Context(), st)
	if e, err := tf.Verify(tok); err != nil || e.Name != "app" || len(e.Grants) != 1 {
		t.Fatalf("Verify = %+v, %v", e, err)
	}
	boom := errors.New("boom")
	if _, err := EditTokens(t.Context(), st, func(tf *TokenFile) error { tf.Revoke("app", time.Now()); return boom }); !errors.Is(err, boom) || st.swaps != 1 {
		t.Fatalf("failed edit: %v, %d swaps; want boom, 1", err, st.swaps)
	}
	if _, err := EditTokens(t.Context(), st, func(tf *TokenFile) error { tf.Revoke("app", time.Now()); return nil }); err != nil {
		t.Fatal(err)
	}
	tf, _, _ = LoadTokens(t.Context(), st)
	if _, err := tf.Verify(tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("revoked token: %v, want ErrRevokedToken", err)
	}
	st.doc = []byte(`{"tokens":[{"id":"x"}]}`)
	if _, _, err := LoadTokens(t.Context(), st); err == nil {
		t.Fatal("a malformed tokens entry loaded")
	}
}

// TestRefreshedFailsClosed: tokens are refused before the first read, in
// force after it, kept while reads fail within maxStale, and refused
// (ErrTokensStale) past it, until a read works again; onError is told.
func TestRefreshedFailsClosed(t *testing.T) {
	st := &memTokens{}
	now := time.Unix(1000, 0)
	var told []error
	var changes int
	r := NewRefreshed(st, time.Second, 10*time.Second, func(err error) { told = append(told, err) },
		func(_, _ *TokenFile) { changes++ })
	r.now = func() time.Time { return now }
	if _, err := r.Current(); !errors.Is(err, ErrTokensStale) {
		t.Fatalf("before any read: %v, want ErrTokensStale", err)
	}
	st.fail = errors.New("no route to host")
	if err := r.Refresh(t.Context()); err == nil || errors.Is(err, ErrTokensStale) {
		t.Fatalf("a failing first read returned %v, want the read's own error", err)
	}
	if len(told) != 1 || !errors.Is(told[0], ErrTokensStale) || !strings.Contains(told[0].Error(), "no route to host") {
		t.Fatalf("a failing first read told %v, want ErrTokensStale naming the cause (tokens refused)", told)
	}
	st.fail = nil
	told = nil
	var tok string
	_, _ = EditTokens(t.Context(), st, func(tf *TokenFile) (err error) { tok, _, err = tf.Create("a", nil, now); return err })
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tf, err := r.Current()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tf.Verify(tok); err != nil {
		t.Fatal(err)
	}
	st.fail = errors.New("connection refused")
	now = now.Add(5 * time.Second)
	if err := r.Refresh(t.Context()); err == nil {
		t.Fatal("a failing read reported no error")
	}
	if _, err := r.Current(); err != nil {
		t.Fatalf("within maxStale: %v", err)
	}
	now = now.Add(6 * time.Second) // 11 s since the last good read
	_, err = r.Current()
	if !errors.Is(err, ErrTokensStale) || !bytes.Contains([]byte(err.Error()), []byte("connection refused")) {
		t.Fatalf("past maxStale: %v, want ErrTokensStale naming the cause", err)
	}
	if err := r.Refresh(t.Context()); err == nil {
		t.Fatal("a failing read reported no error")
	}
	st.fail = nil
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Current(); err != nil {
		t.Fatalf("after a good read: %v", err)
	}
	if len(told) != 4 || told[0] != nil || told[1] == nil || errors.Is(told[1], ErrTokensStale) ||
		!errors.Is(told[2], ErrTokensStale) || told[3] != nil {
		t.Fatalf("onError told %v; want nil, an error within maxStale, ErrTokensStale past it, nil", told)
	}
	if changes != 1 {
		t.Fatalf("onChange called %d times, want 1 (not for the first read)", changes)
	}
}
