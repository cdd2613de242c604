package schemaregistry

import (
	"context"
	"testing"
)

// TestRegisterWithVersion: a registration that names its version outside
// IMPORT mode is taken when the version is the subject's next one, as in
// Confluent's registry (KafkaSchemaRegistry.register: only an id needs
// IMPORT mode; a version other than the next is an invalid schema, 42201),
// so a client registering "as version N+1" to catch a concurrent
// registration works against wail too. It was refused with 42205 whatever
// the version. The compatibility check still applies, and the version is
// a new one even when the subject holds the schema already (Confluent
// skips its "registered already" answer when a version is given).
func TestRegisterWithVersion(t *testing.T) {
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	type step struct {
		name     string
		req      SchemaRequest
		wantCode int // 0: registered
		wantVer  int // the subject's latest version after the step
	}
	for _, s := range []step{
		{"first version as 1", SchemaRequest{Schema: orderV1, Version: 1}, 0, 1},
		{"a version past the next", SchemaRequest{Schema: orderV2, Version: 3}, CodeInvalidSchema, 1},
		{"a version already taken", SchemaRequest{Schema: orderV2, Version: 1}, CodeInvalidSchema, 1},
		{"incompatible as the next", SchemaRequest{Schema: orderBad, Version: 2}, CodeIncompatible, 1},
		{"the next", SchemaRequest{Schema: orderV2, Version: 2}, 0, 2},
		{"the same schema again as the next", SchemaRequest{Schema: orderV2, Version: 3}, 0, 3},
		{"an id still needs IMPORT mode", SchemaRequest{Schema: orderV2, ID: 9, Version: 4}, CodeNotPermitted, 3},
		{"no version: the existing one", SchemaRequest{Schema: orderV2}, 0, 3},
	} {
		s.req.SchemaType = Protobuf
		_, err := r.Register(ctx, "orders-value", s.req)
		if errCode(err) != s.wantCode {
			t.Fatalf("%s: %v, want error code %d", s.name, err, s.wantCode)
		}
		v, err := r.Version(ctx, "orders-value", latest, false)
		if err != nil || v.Version != s.wantVer {
			t.Fatalf("%s: latest %d %v, want %d", s.name, v.Version, err, s.wantVer)
		}
	}
	// Soft-deleted versions count: the next is after them.
	if _, err := r.DeleteVersion(ctx, "orders-value", 3, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: orderV2 + "// again\n", SchemaType: Protobuf, Version: 3}); errCode(err) != CodeInvalidSchema {
		t.Fatalf("the number of a soft-deleted version: %v, want %d", err, CodeInvalidSchema)
	}
	if _, err := r.Register(ctx, "orders-value", SchemaRequest{Schema: orderV2 + "// again\n", SchemaType: Protobuf, Version: 4}); err != nil {
		t.Fatalf("the next after a soft-deleted version: %v", err)
	}
}
