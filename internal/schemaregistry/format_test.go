package schemaregistry

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"testing"

	protov2 "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestFormatSerialized: format=serialized answers a schema as a base64
// FileDescriptorProto (what confluent-kafka's deserializers ask for) on
// every route that answers a schema; any other format answers the text as
// registered. The schema imports Confluent's built-in files with no
// reference, as Confluent's registry allows.
func TestFormatSerialized(t *testing.T) {
	st := openPebble(t, t.TempDir())
	defer st.Close()
	h := Handler(New(Catalog(st), Limits{}), slog.New(slog.DiscardHandler), nil)
	const text = "syntax = \"proto3\";\npackage shop;\nimport \"google/type/money.proto\";\nimport \"google/protobuf/timestamp.proto\";\nimport \"confluent/meta.proto\";\n" +
		"message Order {\n  option (confluent.message_meta) = { doc: \"an order\" };\n  // the id\n  string id = 1;\n  google.type.Money total = 2;\n  google.protobuf.Timestamp at = 3;\n  map<string, string> tags = 4;\n}\n"
	body, _ := json.Marshal(SchemaRequest{Schema: text, SchemaType: Protobuf})
	if a := call(t, h, "POST", "/subjects/orders-value/versions", string(body)); a.code != 200 || a.body != "{\"id\":1}\n" {
		t.Fatalf("register with built-in imports and no references: %d %s", a.code, a.body)
	}
	if a := call(t, h, "POST", "/compatibility/subjects/orders-value/versions/latest?verbose=true", string(body)); a.code != 200 || a.body != "{\"is_compatible\":true,\"messages\":[]}\n" {
		t.Fatalf("compatibility: %d %s", a.code, a.body)
	}
	fdp := func(t *testing.T, b64 string) *descriptorpb.FileDescriptorProto {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("not base64: %v: %q", err, b64)
		}
		var f descriptorpb.FileDescriptorProto
		if err := protov2.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		return &f
	}
	for _, tc := range []struct {
		path string
		raw  bool // the answer is the schema alone, not JSON
	}{
		{"/schemas/ids/1", false},
		{"/schemas/ids/1/schema", true},
		{"/subjects/orders-value/versions/1", false},
		{"/subjects/orders-value/versions/latest", false},
		{"/subjects/orders-value/versions/1/schema", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got := func(format string) string {
				a := call(t, h, "GET", tc.path+format, "")
				if a.code != 200 {
					t.Fatalf("%s%s: %d %s", tc.path, format, a.code, a.body)
				}
				if tc.raw {
					return a.body
				}
				var s SubjectSchema
				if err := json.Unmarshal([]byte(a.body), &s); err != nil {
					t.Fatal(err)
				}
				if s.SchemaType != Protobuf {
					t.Fatalf("schemaType %q", s.SchemaType)
				}
				return s.Schema
			}
			for _, format := range []string{"", "?format=default", "?format=ignore_extensions", "?format=someday"} {
				if s := got(format); s != text {
					t.Fatalf("format %q answered %q, want the text", format, s)
				}
			}
			f := fdp(t, got("?format=serialized"))
			if f.GetPackage() != "shop" || len(f.MessageType) != 1 || f.MessageType[0].GetName() != "Order" || f.SourceCodeInfo != nil {
				t.Fatalf("serialized: %v", f)
			}
			if deps := f.GetDependency(); len(deps) != 3 || deps[0] != "google/type/money.proto" || deps[2] != "confluent/meta.proto" {
				t.Fatalf("dependencies %q", deps)
			}
			if n := len(f.MessageType[0].NestedType); n != 1 { // the map entry, as a descriptor has it
				t.Fatalf("%d nested types", n)
			}
		})
	}
	if a := call(t, h, "GET", "/schemas/ids/2?format=serialized", ""); a.code != 404 {
		t.Fatalf("a missing id: %d %s", a.code, a.body)
	}
}
