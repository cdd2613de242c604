package schema

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// confluentBuiltins are the files Confluent's registry knows without a
// reference (its ProtobufSchema's known dependencies).
var confluentBuiltins = []string{
	"confluent/meta.proto", "confluent/type/decimal.proto",
	"google/type/calendar_period.proto", "google/type/color.proto", "google/type/date.proto",
	"google/type/datetime.proto", "google/type/dayofweek.proto", "google/type/decimal.proto",
	"google/type/expr.proto", "google/type/fraction.proto", "google/type/interval.proto",
	"google/type/latlng.proto", "google/type/money.proto", "google/type/month.proto",
	"google/type/phone_number.proto", "google/type/postal_address.proto", "google/type/quaternion.proto",
	"google/type/timeofday.proto",
	"google/protobuf/any.proto", "google/protobuf/api.proto", "google/protobuf/descriptor.proto",
	"google/protobuf/duration.proto", "google/protobuf/empty.proto", "google/protobuf/field_mask.proto",
	"google/protobuf/source_context.proto", "google/protobuf/struct.proto", "google/protobuf/timestamp.proto",
	"google/protobuf/type.proto", "google/protobuf/wrappers.proto",
}

// TestBuiltinImports: a schema importing any of Confluent's built-in files
// compiles with no reference, a field of the file's first type checks and
// converts values, and the schema serializes with the import by path.
func TestBuiltinImports(t *testing.T) {
	for _, path := range confluentBuiltins {
		t.Run(path, func(t *testing.T) {
			if !Builtin(path) {
				t.Fatalf("%s is not built in", path)
			}
			// The file's first message or enum, by full name.
			probe, err := Compile(context.Background(), File{Source: fmt.Sprintf("syntax = \"proto3\"; import %q;", path)}, nil, Limits{})
			if err != nil {
				t.Fatalf("import %s: %v", path, err)
			}
			dep := probe.File().Imports().Get(0).FileDescriptor
			var typ string
			switch {
			case dep.Messages().Len() > 0:
				typ = string(dep.Messages().Get(0).FullName())
			case dep.Enums().Len() > 0:
				typ = string(dep.Enums().Get(0).FullName())
			default:
				t.Fatalf("%s defines no type", path)
			}
			src := fmt.Sprintf("syntax = \"proto3\";\npackage t;\nimport %q;\nmessage M { %s f = 1; string s = 2; }\n", path, typ)
			s := mustCompile(t, src)
			m, err := s.MessageType("t.M")
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.FromJSON([]byte(`{"s":"x"}`))
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			if err := m.Validate(b); err != nil {
				t.Fatal(err)
			}
			fdp, err := base64.StdEncoding.DecodeString(s.Serialized())
			if err != nil || !strings.Contains(string(fdp), path) {
				t.Fatalf("the serialized form does not import %s", path)
			}
		})
	}
}

// TestBuiltinValues: values of the common types convert from Protobuf JSON
// (the well-known types in their JSON forms), print back, and a field the
// built-in type lacks is refused as in any message.
func TestBuiltinValues(t *testing.T) {
	const src = `syntax = "proto3";
package shop;
import "google/type/date.proto";
import "google/type/money.proto";
import "google/type/latlng.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "confluent/meta.proto";
import "confluent/type/decimal.proto";
message Order {
  option (confluent.message_meta) = { doc: "an order" };
  string id = 1 [(confluent.field_meta) = { tags: ["PII"] }];
  google.type.Date day = 2;
  google.type.Money total = 3;
  google.type.LatLng at = 4;
  google.protobuf.Timestamp placed = 5;
  google.protobuf.Duration ttl = 6;
  google.protobuf.StringValue note = 7;
  confluent.type.Decimal amount = 8;
}
`
	s := mustCompile(t, src)
	m, err := s.MessageType("shop.Order")
	if err != nil {
		t.Fatal(err)
	}
	in := `{"id":"o-1","day":{"year":2026,"month":11,"day":30},"total":{"currencyCode":"EUR","units":"12","nanos":500000000},` +
		`"at":{"latitude":48.85,"longitude":2.35},"placed":"2026-11-30T20:00:00Z","ttl":"1.500s","note":"gift","amount":{"value":"AQI=","precision":5,"scale":2}}`
	b, err := m.FromJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(b); err != nil {
		t.Fatal(err)
	}
	out, err := m.Print(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"placed":"2026-11-30T20:00:00Z"`, `"ttl":"1.500s"`, `"note":"gift"`, `"currencyCode":"EUR"`, `"day":{"year":2026,"month":11,"day":30}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed %s, want %s in it", out, want)
		}
	}
	for _, bad := range []string{`{"placed":"yesterday"}`, `{"day":{"year":"x"}}`, `{"total":{"cents":1}}`} {
		if _, err := m.FromJSON([]byte(bad)); err == nil {
			t.Errorf("%s was taken", bad)
		}
	}
	// A google.type.Date with a field 9 it does not define: drift inside a
	// built-in type is refused like anywhere else.
	day := protowire.AppendTag(nil, 9, protowire.VarintType)
	day = protowire.AppendVarint(day, 1)
	v := protowire.AppendTag(nil, 2, protowire.BytesType)
	v = protowire.AppendBytes(v, day)
	if err := m.Validate(v); err == nil || !strings.Contains(err.Error(), "9") {
		t.Fatalf("an unknown field inside google.type.Date: %v", err)
	}
}

// TestBuiltinCompatibility: built-in types compare as the Confluent
// registry compares them: the same type is compatible, another named type
// in its place is FIELD_NAMED_TYPE_CHANGED, a field of a built-in type
// added or removed is compatible.
func TestBuiltinCompatibility(t *testing.T) {
	const head = "syntax = \"proto3\";\npackage shop;\nimport \"google/type/date.proto\";\nimport \"google/type/money.proto\";\nimport \"google/protobuf/timestamp.proto\";\n"
	v1 := mustCompile(t, head+"message Order { google.type.Money total = 1; google.protobuf.Timestamp at = 2; }")
	for _, tc := range []struct {
		name, candidate string
		want            string
	}{
		{"same", "message Order { google.type.Money total = 1; google.protobuf.Timestamp at = 2; }", ""},
		{"field added", "message Order { google.type.Money total = 1; google.protobuf.Timestamp at = 2; google.type.Date day = 3; }", ""},
		{"field removed", "message Order { google.type.Money total = 1; }", ""},
		{"money to date", "message Order { google.type.Date total = 1; google.protobuf.Timestamp at = 2; }",
			`{errorType:"FIELD_NAMED_TYPE_CHANGED", description:"The type of a MESSAGE field at path '#/Order/1' in the new schema does not match its type in the old schema: field total (shop.Order.total): google.type.Money → google.type.Date"}`},
		{"timestamp to int64", "message Order { google.type.Money total = 1; int64 at = 2; }", "FIELD_KIND_CHANGED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := Check(Backward, mustCompile(t, head+tc.candidate), []Version{{Version: 1, Schema: v1}})
			if tc.want == "" {
				if len(msgs) != 0 {
					t.Fatalf("refused: %q", msgs)
				}
				return
			}
			if len(msgs) == 0 || !strings.Contains(msgs[0], tc.want) {
				t.Fatalf("messages %q, want one with %s", msgs, tc.want)
			}
		})
	}
}

// TestBuiltinReferenceWins: a schema that brings its own file under a
// built-in path (a reference of that name) gets its own file, as in the
// Confluent registry.
func TestBuiltinReferenceWins(t *testing.T) {
	own := File{Path: "google/type/date.proto", Source: "syntax = \"proto3\";\npackage google.type;\nmessage Date { string iso = 1; }\n"}
	s := mustCompile(t, "syntax = \"proto3\";\nimport \"google/type/date.proto\";\nmessage M { google.type.Date d = 1; }\n", own)
	d := s.File().Messages().Get(0).Fields().Get(0).Message()
	if d.Fields().Len() != 1 || d.Fields().Get(0).Name() != "iso" {
		t.Fatalf("google.type.Date has %d fields, first %s: the built-in won over the reference", d.Fields().Len(), d.Fields().Get(0).Name())
	}
	if Builtin("google/type/nope.proto") || Builtin("shop/order.proto") {
		t.Fatal("an unknown path is built in")
	}
}
