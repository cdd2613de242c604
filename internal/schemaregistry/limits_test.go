package schemaregistry

import (
	"context"
	"errors"
	"testing"
)

// errCode is the Confluent error code of a Registry error.
func errCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// TestDeleteAtDocumentLimit: a registry whose document is at
// schema_registry.max_document_bytes can still be cleaned up, as the
// refusal tells the operator to do: a soft delete (which marks versions,
// adding bytes) and then a permanent one go through, and the space they
// free takes a new schema.
func TestDeleteAtDocumentLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	store := Catalog{Store: st}
	big := New(store, Limits{})
	for _, s := range []string{"a", "b"} {
		if _, err := big.Register(ctx, s, SchemaRequest{Schema: orderV1 + "// " + s + "\n", SchemaType: Protobuf}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := New(store, Limits{MaxDocumentBytes: len(raw)}) // at the limit
	if _, err := full.Register(ctx, "c", SchemaRequest{Schema: orderV1 + "// c\n", SchemaType: Protobuf}); errCode(err) != CodeSchemaTooLarge {
		t.Fatalf("register at the limit: %v, want error code %d (else the registry is not full)", err, CodeSchemaTooLarge)
	}
	if _, err := full.DeleteSubject(ctx, "a", false); err != nil {
		t.Fatalf("soft delete at the limit: %v", err)
	}
	if _, err := full.DeleteSubject(ctx, "a", true); err != nil {
		t.Fatalf("permanent delete at the limit: %v", err)
	}
	if _, err := full.Register(ctx, "c", SchemaRequest{Schema: orderV1 + "// c\n", SchemaType: Protobuf}); err != nil {
		t.Fatalf("register after freeing space: %v", err)
	}
}
