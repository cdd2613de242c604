package schemaregistry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// canceledLoad is a Storage that fails as a store does when the request's
// context ends: with the context's error, wrapped.
type canceledLoad struct{ Storage }

func (canceledLoad) Load(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("schema registry: load: %w", ctx.Err())
}

// TestClientGoneIsNotAStoreFailure: a client that hangs up before its
// answer (its request's context canceled) is no failure of the store: the
// log does not send an operator to check it.
func TestClientGoneIsNotAStoreFailure(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := Handler(New(canceledLoad{}, Limits{}), slog.New(slog.NewTextHandler(&logs, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/subjects", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code < 400 {
		t.Fatalf("a canceled request answered %d: the storage did not fail, the test proves nothing", rec.Code)
	}
	if strings.Contains(logs.String(), "storage failed") {
		t.Fatalf("a canceled request was logged as a store failure: %s", logs.String())
	}
}
