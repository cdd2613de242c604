package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/auth"
)

// catalogTokens are the bearer tokens of security.auth.tokens_source
// catalog: read from the store's catalog (package auth, CatalogTokens)
// every tokens_refresh, refused once older than tokens_max_staleness. A
// revocation made through any process sharing the store is seen here
// within tokens_refresh (plus one read of the catalog), and the streams
// opened with the token end at their next check (reload_interval).
type catalogTokens struct {
	every, maxStale time.Duration
	onError         func(error)
	r               atomic.Pointer[auth.Refreshed] // nil until the store is open
}

func (c *catalogTokens) current() (*auth.TokenFile, error) {
	r := c.r.Load()
	if r == nil {
		return nil, fmt.Errorf("%w yet: the store is not open", auth.ErrTokensStale)
	}
	return r.Current()
}

// UseTokenStore gives the guard the store its tokens live in, with
// security.auth.tokens_source catalog: it reads them once now (an error is
// returned and told to OnTokensError; tokens are refused until a read
// works) and returns what refreshes them until its context ends, for the
// caller to run and wait for. Without tokens_source catalog it does
// nothing and returns nil.
func (g *Guard) UseTokenStore(ctx context.Context, st auth.TokenStore) (run func(context.Context), err error) {
	c := g.fromCatalog
	if c == nil {
		return nil, nil
	}
	r := auth.NewRefreshed(st, c.every, c.maxStale, c.onError, func(before, after *auth.TokenFile) {
		g.auditTokens("catalog "+auth.TokensEntry, before, after)
	})
	err = r.Refresh(ctx)
	c.r.Store(r)
	return r.Run, err
}
