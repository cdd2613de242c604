package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// racedTokens is a memTokens on which another process edits the document
// between each Load and Swap of the first `races` edits, so that their
// compare-and-set fails.
type racedTokens struct {
	memTokens
	races int
	other func()
}

func (r *racedTokens) Swap(ctx context.Context, old, new []byte) (bool, error) {
	if r.races > 0 {
		r.races--
		r.other()
	}
	return r.memTokens.Swap(ctx, old, new)
}

// TestEditTokensLosesNoEdit: an edit whose compare-and-set fails (another
// process's edit landed between its read and its swap) is made again on
// the fresh document, and both edits are in it: a revocation is never
// reported done and then lost. With the context ended, a failed swap is
// not retried: EditTokens returns the context's error.
func TestEditTokensLosesNoEdit(t *testing.T) {
	st := &racedTokens{races: 1}
	st.other = func() {
		_, err := EditTokens(t.Context(), &st.memTokens, func(tf *TokenFile) error {
			_, _, err := tf.Create("other", nil, time.Now())
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	tf, err := EditTokens(t.Context(), st, func(tf *TokenFile) error {
		_, _, err := tf.Create("mine", nil, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	saved, _, err := LoadTokens(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Tokens) != 2 || len(tf.Tokens) != 2 {
		t.Fatalf("saved %d tokens, returned %d; want both edits (2)", len(saved.Tokens), len(tf.Tokens))
	}
	ctx, cancel := context.WithCancel(t.Context())
	st.races = maxEditAttempts + 1
	st.other = func() {
		cancel()
		st.mu.Lock()
		st.doc = append(st.doc[:len(st.doc):len(st.doc)], ' ') // another edit
		st.mu.Unlock()
	}
	if _, err := EditTokens(ctx, st, func(*TokenFile) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("an edit whose swap failed after its context ended: %v, want context.Canceled", err)
	}
}

// TestRefreshedStaleFromTheReadsStart: the tokens read are as fresh as
// the read's start (a revocation saved during a slow read may be missing
// from them), so their age, against security.auth.tokens_max_staleness,
// counts from then; and before any read the refusal says none was read
// yet.
func TestRefreshedStaleFromTheReadsStart(t *testing.T) {
	now := time.Unix(1000, 0)
	st := &slowTokens{advance: func() { now = now.Add(5 * time.Second) }}
	r := NewRefreshed(st, time.Second, 10*time.Second, nil, nil)
	r.now = func() time.Time { return now }
	if _, err := r.Current(); !errors.Is(err, ErrTokensStale) || !strings.Contains(err.Error(), "yet") {
		t.Fatalf("before any read: %v, want ErrTokensStale, none read yet", err)
	}
	start := now
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	now = start.Add(10 * time.Second)
	if _, err := r.Current(); err != nil {
		t.Fatalf("maxStale after the read's start: %v", err)
	}
	now = start.Add(10*time.Second + time.Millisecond)
	if _, err := r.Current(); !errors.Is(err, ErrTokensStale) {
		t.Fatalf("past maxStale after the read's start (within it after its end): %v, want ErrTokensStale", err)
	}
}

// slowTokens is a memTokens whose Load takes time (advance moves the
// test's clock).
type slowTokens struct {
	memTokens
	advance func()
}

func (s *slowTokens) Load(ctx context.Context) ([]byte, error) {
	s.advance()
	return s.memTokens.Load(ctx)
}
