package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Tokens in the catalog (security.auth.tokens_source: catalog): the tokens
// document, the tokens file's JSON, is one entry of the store's table
// catalog, changed only by compare-and-set, so every process sharing a
// PostgreSQL, MySQL or Cassandra store sees the same tokens and
// revocations, and two edits at once never lose one another.

// TokensEntry is the catalog entry of the tokens document (a reserved
// name: never a table).
const TokensEntry = store.ReservedPrefix + "auth_tokens"

// ErrTokensStale is a tokens document not read for longer than the
// staleness bound: tokens are refused (fail closed) rather than a
// revocation missed.
var ErrTokensStale = errors.New("the bearer tokens could not be read from the catalog")

// TokenStore keeps the tokens document durably.
type TokenStore interface {
	// Load returns the document (nil: none saved yet).
	Load(ctx context.Context) ([]byte, error)
	// Swap saves new if the stored document is exactly old (nil: none)
	// and reports whether it did; swaps are linearizable across every
	// process sharing the store.
	Swap(ctx context.Context, old, new []byte) (bool, error)
}

// CatalogTokens is the TokenStore of a wail store: entry TokensEntry of
// its table catalog.
func CatalogTokens(st store.CatalogReader) TokenStore {
	return store.CatalogEntry{Store: st, Name: TokensEntry}
}

// LoadTokens reads and checks the tokens document of st (none: no token).
func LoadTokens(ctx context.Context, st TokenStore) (*TokenFile, []byte, error) {
	raw, err := st.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return &TokenFile{byID: map[string]int{}}, nil, nil
	}
	tf, err := ParseTokenFile(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("the catalog's %s: %w", TokensEntry, err)
	}
	return tf, raw, nil
}

// maxEditAttempts bounds the compare-and-set retries of one edit: each
// failed swap means another edit landed, so running out means a storm of
// edits, not a stuck one.
const maxEditAttempts = 32

// EditTokens applies edit to the tokens document of st by compare-and-set,
// again on a fresh copy when another process changed it meanwhile, and
// returns the document saved. An error from edit is returned as it is,
// and nothing is saved.
func EditTokens(ctx context.Context, st TokenStore, edit func(*TokenFile) error) (*TokenFile, error) {
	for range maxEditAttempts {
		tf, old, err := LoadTokens(ctx, st)
		if err != nil {
			return nil, err
		}
		if err := edit(tf); err != nil {
			return nil, err
		}
		b, err := json.Marshal(tf)
		if err != nil {
			return nil, err
		}
		ok, err := st.Swap(ctx, old, b)
		if err != nil {
			return nil, err
		}
		if ok {
			return tf, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("tokens: %d edits of the catalog's %s by other processes in a row; try again", maxEditAttempts, TokensEntry)
}

// Refreshed is the tokens document as last read from a TokenStore, kept
// fresh by Run; Current refuses it once it is older than maxStale, so a
// catalog that cannot be read turns bearer tokens away instead of keeping
// a revoked one valid.
type Refreshed struct {
	st       TokenStore
	every    time.Duration
	maxStale time.Duration
	now      func() time.Time
	onError  func(error)
	onChange func(before, after *TokenFile)

	mu  sync.Mutex // held only to copy cur, never across a read of the store
	cur snapshot
}

type snapshot struct {
	tf  *TokenFile
	at  time.Time // when it was read (zero: never)
	err error     // the last read's error, nil once one works
}

// NewRefreshed returns the refresher of st: it reads every every (each
// read bounded by every too), and tokens older than maxStale are refused.
// onError is told of a failed read (wrapping ErrTokensStale when the
// tokens are refused from then on: none read yet, or the last read is
// older than maxStale), and nil once one works again;
// onChange of each document read after the first (for the audit log).
func NewRefreshed(st TokenStore, every, maxStale time.Duration, onError func(error), onChange func(before, after *TokenFile)) *Refreshed {
	if onError == nil {
		onError = func(error) {}
	}
	if onChange == nil {
		onChange = func(_, _ *TokenFile) {}
	}
	return &Refreshed{st: st, every: every, maxStale: maxStale, now: time.Now, onError: onError, onChange: onChange}
}

// Refresh reads the document once.
func (r *Refreshed) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.every, time.Second))
	defer cancel()
	start := r.now() // the document read is at least this fresh
	tf, _, err := LoadTokens(ctx, r.st)
	r.mu.Lock()
	before := r.cur.tf
	if err != nil {
		r.cur.err = err
	} else {
		r.cur = snapshot{tf: tf, at: start}
	}
	r.mu.Unlock()
	if err == nil && before != nil {
		r.onChange(before, tf)
	}
	told := err
	if err != nil {
		if _, refused := r.Current(); refused != nil {
			told = refused // wraps ErrTokensStale and names err: bearer tokens are refused now
		}
	}
	r.onError(told)
	return err
}

// Run refreshes until ctx ends.
func (r *Refreshed) Run(ctx context.Context) {
	every(ctx, r.every, func() { _ = r.Refresh(ctx) }) // told to onError
}

// every calls fn every d until ctx ends (a call in flight is fn's to cut
// when ctx ends).
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Current returns the tokens, or ErrTokensStale when none were read within
// maxStale.
func (r *Refreshed) Current() (*TokenFile, error) {
	r.mu.Lock()
	s := r.cur
	r.mu.Unlock()
	switch {
	case s.at.IsZero():
		return nil, fmt.Errorf("%w yet (%v): bearer tokens are refused until they can be (see /healthz)", ErrTokensStale, s.err)
	case r.now().Sub(s.at) > r.maxStale:
		return nil, fmt.Errorf("%w for %s, longer than security.auth.tokens_max_staleness %s (%v): bearer tokens are refused until they can be (see /healthz)",
			ErrTokensStale, r.now().Sub(s.at).Round(time.Second), r.maxStale, s.err)
	}
	return s.tf, nil
}
