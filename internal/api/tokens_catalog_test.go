package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// flakyTokens is a TokenStore holding doc whose reads fail while down.
type flakyTokens struct {
	doc  []byte
	down atomic.Bool
}

func (f *flakyTokens) Load(context.Context) ([]byte, error) {
	if f.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:5433: connection refused")
	}
	return f.doc, nil
}

func (f *flakyTokens) Swap(context.Context, []byte, []byte) (bool, error) {
	return false, errors.New("read only")
}

// TestCatalogTokensFailClosed: with tokens_source catalog, a token is
// refused Unavailable (503 on HTTP endpoints) before the store is given,
// works once the catalog is read, and is refused Unavailable again once
// the catalog could not be read for tokens_max_staleness (why is told to
// OnTokensError: /healthz and the log, not the caller).
func TestCatalogTokensFailClosed(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Store.Kind = config.StorePostgres
	cfg.Security.Auth = config.Auth{Enabled: true, TokensSource: config.TokensFromCatalog,
		TokensRefresh: 10 * time.Millisecond, TokensMaxStaleness: time.Second} // the check right after the first read must not find it stale on a loaded machine
	var told atomic.Int32
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler), OnTokensError: func(err error) {
		if err != nil {
			told.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	tf := &auth.TokenFile{}
	tok, _, err := tf.Create("m", []auth.Grant{{Permission: auth.Metrics, Tables: "*"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st := &flakyTokens{doc: mustJSON(t, tf)}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	metrics := func() (int, string) {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := metrics(); code != http.StatusServiceUnavailable || !strings.Contains(body, auth.ErrTokensStale.Error()) {
		t.Fatalf("before the store: %d %q, want 503 saying the tokens could not be read", code, body)
	}
	run, err := g.UseTokenStore(t.Context(), st)
	if err != nil || run == nil {
		t.Fatalf("UseTokenStore: run is nil: %t, err %v", run == nil, err)
	}
	if code, body := metrics(); code != http.StatusOK {
		t.Fatalf("after a read: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	defer func() { cancel(); <-done }()
	st.down.Store(true)
	var code int
	var body string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if code, body = metrics(); code != http.StatusOK {
			break
		}
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "tokens_max_staleness") {
		t.Fatalf("catalog down: %d %q, want 503 naming tokens_max_staleness", code, body)
	}
	id := g.authenticate(func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/wail.v1.ProducerService/Put", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}())
	if codeOf(id.err) != connect.CodeUnavailable {
		t.Fatalf("an RPC with the catalog down: %v, want unavailable", id.err)
	}
	if told.Load() == 0 {
		t.Fatal("OnTokensError was not told of the failed reads")
	}
	st.down.Store(false)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if code, _ = metrics(); code == http.StatusOK {
			return
		}
	}
	t.Fatalf("the catalog is back, /metrics still answers %d", code)
}

// TestCatalogTokensNeedSharedStore: tokens_source catalog on the embedded
// store is refused, saying why.
func TestCatalogTokensNeedSharedStore(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Security.Auth = config.Auth{Enabled: true, TokensSource: config.TokensFromCatalog}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "use tokens_source file") {
		t.Fatalf("Validate = %v, want the embedded store refused", err)
	}
	cfg.Security.Auth.TokensSource = "db"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "neither file nor catalog") {
		t.Fatalf("Validate = %v", err)
	}
}

func mustJSON(t *testing.T, tf *auth.TokenFile) []byte {
	t.Helper()
	b, err := json.Marshal(tf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCatalogTokensRefusalHidesTheCause: a token refused because the
// catalog cannot be read is answered Unavailable without the store's
// error, which names the database's host, user and more, to a caller not
// authenticated (any bearer, well formed or not, got it); /healthz's
// detail (metrics permission) and the log keep it.
func TestCatalogTokensRefusalHidesTheCause(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Store.Kind = config.StorePostgres
	cfg.Security.Auth = config.Auth{Enabled: true, TokensSource: config.TokensFromCatalog}
	var told atomic.Value
	g, err := NewGuard(&cfg, GuardOptions{Logger: slog.New(slog.DiscardHandler), OnTokensError: func(err error) {
		if err != nil {
			told.Store(err.Error())
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cause := "failed to connect to `host=db.internal user=wail_owner database=prod`: password authentication failed"
	st := &failingTokens{err: errors.New(cause)}
	if _, err := g.UseTokenStore(t.Context(), st); err == nil {
		t.Fatal("UseTokenStore: the failed read was not returned")
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, bearer := range []string{"junk", "wail_0123456789abcdef_" + strings.Repeat("A", 43)} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "db.internal") || !strings.Contains(w.Body.String(), "/healthz") {
			t.Errorf("bearer %q: %d %q, want 503 without the store's error, pointing at /healthz", bearer, w.Code, w.Body.String())
		}
		id := g.authenticate(func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/wail.v1.ProducerService/Put", nil)
			r.Header.Set("Authorization", "Bearer "+bearer)
			return r
		}())
		if err := unauthenticated(id); codeOf(id.err) != connect.CodeUnavailable || strings.Contains(err.Error(), "db.internal") {
			t.Errorf("bearer %q on an RPC: %v, want unavailable without the store's error", bearer, err)
		}
	}
	if s, _ := told.Load().(string); !strings.Contains(s, "db.internal") {
		t.Errorf("OnTokensError was told %q, want the store's error (for /healthz and the log)", s)
	}
}

// failingTokens is a TokenStore whose reads fail with err.
type failingTokens struct{ err error }

func (f *failingTokens) Load(context.Context) ([]byte, error) { return nil, f.err }

func (f *failingTokens) Swap(context.Context, []byte, []byte) (bool, error) { return false, f.err }
