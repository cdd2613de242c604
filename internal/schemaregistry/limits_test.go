package schemaregistry

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
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
	store := Catalog(st)
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

// TestImportReusesDeletedID: IMPORT mode may give a new schema the id of
// one deleted permanently (as the Confluent registry allows); checks
// against it then use the new schema, not the one this process compiled
// under that id before.
func TestImportReusesDeletedID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	reg := func(subject string, req SchemaRequest) (int, error) {
		req.SchemaType = Protobuf
		return r.Register(ctx, subject, req)
	}
	if id, err := reg("s", SchemaRequest{Schema: orderV1}); err != nil || id != 1 {
		t.Fatalf("register: %d, %v", id, err)
	}
	if _, err := reg("s", SchemaRequest{Schema: orderV2}); err != nil { // checks against id 1: compiles it
		t.Fatal(err)
	}
	for _, permanent := range []bool{false, true} {
		if _, err := r.DeleteSubject(ctx, "s", permanent); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.SetMode(ctx, "", Import, false); err != nil {
		t.Fatal(err)
	}
	if id, err := reg("t", SchemaRequest{Schema: orderBad, ID: 1, Version: 1}); err != nil || id != 1 {
		t.Fatalf("import under id 1: %d, %v", id, err)
	}
	if _, err := r.SetMode(ctx, "", "", false); err != nil {
		t.Fatal(err)
	}
	// orderBad with a field more: compatible with orderBad (id 1 now),
	// not with orderV1 (id 1 before).
	next := `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  string amount = 2;
  string note = 3;
}
`
	if _, err := reg("t", SchemaRequest{Schema: next}); err != nil {
		t.Fatalf("a schema compatible with id 1 as it is now: %v", err)
	}
}

// TestImportIDRange: ids and versions are 32-bit in Confluent's API and
// wire format (a record carries its schema id in 4 bytes); an import
// naming a larger one is refused, else the records of that schema would
// carry another schema's id; and once an import took the largest, a new
// schema gets no id past it.
func TestImportIDRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	if _, err := r.SetMode(ctx, "", Import, false); err != nil {
		t.Fatal(err)
	}
	for _, req := range []SchemaRequest{
		{Schema: orderV1, ID: 1 << 32},
		{Schema: orderV1, ID: 1<<31 + 5},
		{Schema: orderV1, ID: 7, Version: 1 << 31},
	} {
		req.SchemaType = Protobuf
		if id, err := r.Register(ctx, "s", req); err == nil || errCode(err)/100 != 422 {
			t.Errorf("import id %d version %d: %d, %v; want it refused (422xx)", req.ID, req.Version, id, err)
		}
	}
	if id, err := r.Register(ctx, "s", SchemaRequest{Schema: orderV1, SchemaType: Protobuf, ID: 1<<31 - 1}); err != nil || id != 1<<31-1 {
		t.Fatalf("the largest id: %d, %v", id, err)
	}
	// It took the last id: a new schema gets none (it got 2^31).
	if _, err := r.SetMode(ctx, "", "", false); err != nil {
		t.Fatal(err)
	}
	if id, err := r.Register(ctx, "u", SchemaRequest{Schema: orderV2, SchemaType: Protobuf}); err == nil || errCode(err)/100 != 422 {
		t.Fatalf("a new schema after the largest id was imported: id %d, %v; want it refused (422xx)", id, err)
	}
}

// TestImportNeedsID: in IMPORT mode a registration must name its id, as in
// Confluent's registry ("not in read-write mode"): one without would get
// a new id unchecked for compatibility, and could take an id the import
// has still to give, refused then as taken.
func TestImportNeedsID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	r := New(Catalog(st), Limits{})
	if _, err := r.SetMode(ctx, "s", Import, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  SchemaRequest
		code int // 0: registered
	}{
		{"no id", SchemaRequest{Schema: orderV1}, CodeNotPermitted},
		{"an id", SchemaRequest{Schema: orderV1, ID: 5}, 0},
		{"the same schema again without its id", SchemaRequest{Schema: orderV1}, CodeNotPermitted},
		{"the same schema with its id", SchemaRequest{Schema: orderV1, ID: 5}, 0},
	} {
		tc.req.SchemaType = Protobuf
		id, err := r.Register(ctx, "s", tc.req)
		if errCode(err) != tc.code || (tc.code == 0 && (err != nil || id != 5)) {
			t.Errorf("%s: id %d, %v; want error code %d", tc.name, id, err, tc.code)
		}
	}
	// Back in READWRITE, a new schema gets an id past the imported one.
	if _, err := r.SetMode(ctx, "s", "", false); err != nil {
		t.Fatal(err)
	}
	if id, err := r.Register(ctx, "s", SchemaRequest{Schema: orderV2, SchemaType: Protobuf}); err != nil || id != 6 {
		t.Fatalf("after the import: id %d, %v; want 6", id, err)
	}
}

// TestLoweredLimitsKeepStoredSchemas: schema_registry.max_schema_bytes and
// max_references bound what is registered, not what is stored. Lowered
// after a schema was registered, they made it "no longer compile": its
// records could not be fetched serialized by id (what confluent-kafka's
// deserializer asks for), a typed table could not check or publish its
// values, and every registration under its subject failed, its check
// against the stored schema included.
func TestLoweredLimitsKeepStoredSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openPebble(t, t.TempDir())
	defer st.Close()
	store := Catalog(st)
	wide := New(store, Limits{})
	refs := []Reference{{Name: "shop/money.proto", Subject: "shop.money", Version: 1}}
	if _, err := wide.Register(ctx, "shop.money", SchemaRequest{Schema: money, SchemaType: Protobuf}); err != nil {
		t.Fatal(err)
	}
	big := orderWithMoney + "// " + strings.Repeat("padding ", 40) + "\n"
	id, err := wide.Register(ctx, "orders-value", SchemaRequest{Schema: big, SchemaType: Protobuf, References: refs})
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{MaxSchemaBytes: len(orderWithMoney) + 40, MaxReferences: 1}
	if len(big) <= lim.MaxSchemaBytes {
		t.Fatal("the stored schema is within the lowered limit")
	}
	narrow := New(store, lim)
	if _, err := narrow.ByID(ctx, id); err != nil {
		t.Fatalf("ByID(%d) of a schema stored under a higher limit: %v", id, err)
	}
	h := Handler(narrow, slog.New(slog.DiscardHandler), nil)
	if a := call(t, h, "GET", "/schemas/ids/"+strconv.Itoa(id)+"?format=serialized", ""); a.code != 200 {
		t.Errorf("GET the stored schema serialized: %d %s", a.code, a.body)
	}
	small := orderWithMoney + "// v2\n"
	if _, err := narrow.Register(ctx, "orders-value", SchemaRequest{Schema: strings.Replace(small, "total = 2;", "total = 2; string note = 3;", 1),
		SchemaType: Protobuf, References: refs}); err != nil {
		t.Errorf("register a new version within the limit, checked against the stored one: %v", err)
	}
	// New schemas still obey the limits.
	if _, err := narrow.Register(ctx, "other-value", SchemaRequest{Schema: big + "// other\n", SchemaType: Protobuf, References: refs}); errCode(err) != CodeSchemaTooLarge {
		t.Errorf("a new schema over the limit: %v, want error code %d", err, CodeSchemaTooLarge)
	}
}
