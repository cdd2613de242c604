package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestTypedBuiltinImports: a typed table whose schema imports Confluent's
// built-in files (google/type, google/protobuf, confluent/meta.proto) with
// no reference is created, takes JSON values of those types (the
// well-known types in their JSON forms) and refuses bad ones, prints them
// back, and an alter that changes a field's built-in type is refused with
// the Confluent difference naming the field.
func TestTypedBuiltinImports(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const head = "syntax = \"proto3\";\npackage shop;\nimport \"google/type/money.proto\";\nimport \"google/type/date.proto\";\n" +
		"import \"google/type/latlng.proto\";\nimport \"google/protobuf/timestamp.proto\";\nimport \"confluent/meta.proto\";\n"
	const v1 = head + "message Order {\n  option (confluent.message_meta) = { doc: \"an order\" };\n  string id = 1;\n  google.type.Money total = 2;\n  google.type.Date due = 3;\n  google.protobuf.Timestamp placed_at = 4;\n}\n"
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: v1, Message: "Order"}})); err != nil {
		t.Fatalf("create with built-in imports: %v", err)
	}
	const js = `{"id":"o-1","total":{"currencyCode":"EUR","units":"12","nanos":500000000},"due":{"year":2026,"month":12,"day":1},"placedAt":"2026-11-30T20:00:00Z"}`
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("o-1"), ValueJson: js})); err != nil {
		t.Fatalf("JSON put: %v", err)
	}
	got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "orders", Key: []byte("o-1"), ValueJson: true}))
	if err != nil || got.Msg.ValueJson != js {
		t.Fatalf("get as JSON: %v, %v; want %s", got, err, js)
	}
	for _, bad := range []string{`{"placedAt":"yesterday"}`, `{"due":{"year":"soon"}}`, `{"total":{"cents":1}}`} {
		_, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("bad"), ValueJson: bad}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("put %s: %v, want InvalidArgument", bad, err)
		}
	}
	// A compatible version adds a field of another built-in type.
	v2 := strings.Replace(v1, "  google.protobuf.Timestamp placed_at = 4;\n", "  google.protobuf.Timestamp placed_at = 4;\n  google.type.LatLng ship_to = 5;\n", 1)
	if _, err := c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: v2}})); err != nil {
		t.Fatalf("compatible alter: %v", err)
	}
	if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("o-2"), ValueJson: `{"id":"o-2","shipTo":{"latitude":48.85,"longitude":2.35}}`})); err != nil {
		t.Fatalf("put of the new field: %v", err)
	}
	// Money to Date in place: refused, naming the field and both types.
	v3 := strings.Replace(v2, "google.type.Money total = 2;", "google.type.Date total = 2;", 1)
	_, err = c.admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: v3}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "FIELD_NAMED_TYPE_CHANGED") ||
		!strings.Contains(err.Error(), "google.type.Money → google.type.Date") {
		t.Fatalf("incompatible alter: %v", err)
	}
}
