package schemaregistry

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRemoteByIDAfterHardDelete: an external registry's schema by id is
// asked for again, not kept for good: after its version was deleted for
// good there, ByID says it is not found (so an event is published under
// a live version that reads it, not under an id its consumers cannot
// fetch); a schema asked for again with the same text is not compiled
// again.
func TestRemoteByIDAfterHardDelete(t *testing.T) {
	ctx := t.Context()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	reg := New(Catalog(st), Limits{})
	srv := httptest.NewServer(Handler(reg, slog.New(slog.DiscardHandler), nil))
	defer srv.Close()
	remote, err := NewRemote(RemoteOptions{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := reg.Register(ctx, "orders-value", SchemaRequest{Schema: orderV1, SchemaType: Protobuf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, "orders-value", SchemaRequest{Schema: orderV2, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	first, err := remote.ByID(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := remote.ByID(ctx, v1); err != nil || again != first {
		t.Fatalf("the same schema asked for again: %p, %v; want the one compiled (%p)", again, err, first)
	}
	for _, permanent := range []bool{false, true} {
		if _, err := reg.DeleteVersion(ctx, "orders-value", 1, permanent); err != nil {
			t.Fatal(err)
		}
	}
	_, err = remote.ByID(ctx, v1)
	if e := (*Error)(nil); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Fatalf("schema %d deleted for good: ByID says %v, want not found", v1, err)
	}
}
