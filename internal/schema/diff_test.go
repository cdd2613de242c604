package schema

import (
	"context"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, src string, imports ...File) *Schema {
	t.Helper()
	s, err := Compile(context.Background(), File{Source: src}, imports, Limits{})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return s
}

const base = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 amount = 2;
  repeated string tags = 3;
  Customer customer = 4;
  map<string, int32> counts = 5;
  oneof payment {
    string card = 6;
    string iban = 7;
  }
  Status status = 8;
  message Line { string sku = 1; }
}
message Customer { string name = 1; }
enum Status { UNKNOWN = 0; OPEN = 1; }
`

// edit replaces old by new in base, once; it fails the test when old is
// not there, so a table row cannot silently test nothing.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in base schema", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// TestDiffRules: one row per rule of the Confluent registry's Protobuf
// diff, each an edit of one schema with the differences it must give and
// whether a reader on the update still reads what the original wrote.
func TestDiffRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edits      []string
		original   string // instead of base
		want       []string
		compatible bool
		detail     string // in the first incompatible difference's Detail
	}{
		{name: "identical", want: nil, compatible: true},
		{name: "layout and comments only", edits: []string{"  string id = 1;", "\n  // the id\n  string   id=1 ;"}, compatible: true},
		{name: "package changed", edits: []string{"package shop;", "package store;"},
			want: []string{"PACKAGE_CHANGED #/"}, detail: "package shop → store"},
		{name: "message added", edits: []string{"enum Status", "message Refund { string id = 1; }\nenum Status"},
			want: []string{"MESSAGE_ADDED #/Refund"}, compatible: true},
		{name: "nested message added", edits: []string{"message Line { string sku = 1; }", "message Line { string sku = 1; }\n  message Note { string text = 1; }"},
			want: []string{"MESSAGE_ADDED #/Order/Note"}, compatible: true},
		{name: "message removed", edits: []string{"  message Line { string sku = 1; }\n", ""},
			want: []string{"MESSAGE_REMOVED #/Order/Line"}, detail: "message shop.Order.Line removed"},
		{name: "message renamed", edits: []string{"message Customer { string name = 1; }", "message Client { string name = 1; }",
			"Customer customer = 4;", "Client customer = 4;"},
			want:   []string{"MESSAGE_ADDED #/Client", "MESSAGE_REMOVED #/Customer", "FIELD_NAMED_TYPE_CHANGED #/Order/4"},
			detail: "message shop.Customer removed"},
		{name: "nested message inserted before another", edits: []string{"message Line", "message Note { string text = 1; }\n  message Line"},
			want: []string{"MESSAGE_ADDED #/Order/Note", "MESSAGE_MOVED #/Order/Line"}, compatible: true},
		{name: "messages reordered", original: `syntax = "proto3"; message A { int32 x = 1; } message B { int32 y = 1; }`,
			edits: []string{`syntax = "proto3"; message B { int32 y = 1; } message A { int32 x = 1; }`},
			want:  []string{"MESSAGE_MOVED #/A", "MESSAGE_MOVED #/B"}, compatible: true},
		{name: "field added", edits: []string{"Status status = 8;", "Status status = 8;\n  string note = 9;"},
			want: []string{"FIELD_ADDED #/Order/9"}, compatible: true},
		{name: "field removed", edits: []string{"  int64 amount = 2;\n", ""},
			want: []string{"FIELD_REMOVED #/Order/2"}, compatible: true},
		{name: "field removed and number reserved", edits: []string{"  int64 amount = 2;\n", "  reserved 2;\n"},
			want: []string{"FIELD_REMOVED #/Order/2"}, compatible: true},
		{name: "field renamed", edits: []string{"int64 amount = 2;", "int64 total = 2;"},
			want: []string{"FIELD_NAME_CHANGED #/Order/2"}, compatible: true},
		{name: "field number changed", edits: []string{"int64 amount = 2;", "int64 amount = 20;"},
			want: []string{"FIELD_ADDED #/Order/20", "FIELD_REMOVED #/Order/2"}, compatible: true},
		{name: "field number swapped with another type", edits: []string{"string id = 1;", "string id = 2;", "int64 amount = 2;", "int64 amount = 1;"},
			want:   []string{"FIELD_NAME_CHANGED #/Order/1", "FIELD_SCALAR_KIND_CHANGED #/Order/1", "FIELD_NAME_CHANGED #/Order/2", "FIELD_SCALAR_KIND_CHANGED #/Order/2"},
			detail: "string → int64"},
		{name: "scalar kind changed", edits: []string{"int64 amount = 2;", "string amount = 2;"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/2"}, detail: "field amount (shop.Order.amount): int64 → string"},
		{name: "scalar widened in its group", edits: []string{"int64 amount = 2;", "uint64 amount = 2;"}, compatible: true},
		{name: "int to enum is one group", edits: []string{"int64 amount = 2;", "Status amount = 2;"}, compatible: true},
		{name: "signed to general number", edits: []string{"int64 amount = 2;", "sint64 amount = 2;"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/2"}, detail: "int64 → sint64"},
		{name: "fixed32 to fixed64", original: edit(t, "int64 amount = 2;", "fixed32 amount = 2;"), edits: []string{"int64 amount = 2;", "fixed64 amount = 2;"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/2"}},
		{name: "string to bytes", edits: []string{"string id = 1;", "bytes id = 1;"}, compatible: true},
		{name: "scalar to message", edits: []string{"int64 amount = 2;", "Customer amount = 2;"},
			want: []string{"FIELD_KIND_CHANGED #/Order/2"}, detail: "int64 → shop.Customer"},
		{name: "map to message", edits: []string{"map<string, int32> counts = 5;", "Customer counts = 5;"},
			want: []string{"FIELD_KIND_CHANGED #/Order/5"}},
		{name: "map value kind changed", edits: []string{"map<string, int32> counts = 5;", "map<string, string> counts = 5;"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/5"}, detail: "(map value): int32 → string"},
		{name: "map value widened", edits: []string{"map<string, int32> counts = 5;", "map<string, int64> counts = 5;"}, compatible: true},
		{name: "message type changed", edits: []string{"Customer customer = 4;", "Line customer = 4;"},
			want: []string{"FIELD_NAMED_TYPE_CHANGED #/Order/4"}, detail: "shop.Customer → shop.Order.Line"},
		{name: "proto2 numeric label changed", original: `syntax = "proto2"; message M { optional int32 x = 1; }`,
			edits: []string{`syntax = "proto2"; message M { repeated int32 x = 1; }`},
			want:  []string{"FIELD_NUMERIC_LABEL_CHANGED #/M/1"}, detail: "label optional → repeated"},
		{name: "proto2 string label changed", original: `syntax = "proto2"; message M { optional string x = 1; }`,
			edits: []string{`syntax = "proto2"; message M { repeated string x = 1; }`},
			want:  []string{"FIELD_STRING_OR_BYTES_LABEL_CHANGED #/M/1"}, compatible: true},
		{name: "proto3 repeated to singular has no label to compare", edits: []string{"repeated string tags = 3;", "string tags = 3;"}, compatible: true},
		{name: "required field added", original: `syntax = "proto2"; message M { optional int32 x = 1; }`,
			edits: []string{`syntax = "proto2"; message M { optional int32 x = 1; required int32 y = 2; }`},
			want:  []string{"REQUIRED_FIELD_ADDED #/M/2"}},
		{name: "required field removed", original: `syntax = "proto2"; message M { optional int32 x = 1; required int32 y = 2; }`,
			edits: []string{`syntax = "proto2"; message M { optional int32 x = 1; }`},
			want:  []string{"REQUIRED_FIELD_REMOVED #/M/2"}, detail: "field y (M.y) removed"},
		{name: "enum added", edits: []string{"enum Status", "enum Kind { K0 = 0; }\nenum Status"},
			want: []string{"ENUM_ADDED #/Kind"}, compatible: true},
		{name: "enum value added", edits: []string{"OPEN = 1;", "OPEN = 1; CLOSED = 2;"},
			want: []string{"ENUM_CONST_ADDED #/Status/2"}, compatible: true},
		{name: "enum value removed", edits: []string{" OPEN = 1;", ""},
			want: []string{"ENUM_CONST_REMOVED #/Status/1"}, compatible: true},
		{name: "enum value renamed", edits: []string{"OPEN = 1;", "ACTIVE = 1;"},
			want: []string{"ENUM_CONST_CHANGED #/Status/1"}, compatible: true},
		{name: "oneof added with a new field", edits: []string{"Status status = 8;", "Status status = 8;\n  oneof contact { string email = 9; }"},
			want: []string{"ONEOF_ADDED #/Order/contact", "ONEOF_FIELD_ADDED #/Order/contact/9"}, compatible: true},
		{name: "oneof field added", edits: []string{"string iban = 7;", "string iban = 7;\n    string paypal = 9;"},
			want: []string{"ONEOF_FIELD_ADDED #/Order/payment/9"}, compatible: true},
		{name: "oneof field removed", edits: []string{"    string iban = 7;\n", ""},
			want: []string{"ONEOF_FIELD_REMOVED #/Order/payment/7"}, detail: "field iban (shop.Order.iban) removed"},
		{name: "oneof deleted whole", edits: []string{"  oneof payment {\n    string card = 6;\n    string iban = 7;\n  }\n", ""},
			want: []string{"ONEOF_REMOVED #/Order/payment"}, compatible: true},
		// Not deleted whole when a member survives elsewhere: the members
		// gone are reported as removed from it.
		{name: "oneof removed, one member kept at top level", edits: []string{"  oneof payment {\n    string card = 6;\n    string iban = 7;\n  }\n", "  string card = 6;\n"},
			want:   []string{"ONEOF_REMOVED #/Order/payment", "ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/Order/6", "ONEOF_FIELD_REMOVED #/Order/payment/7"},
			detail: "field iban (shop.Order.iban) removed"},
		{name: "oneof renamed", edits: []string{"oneof payment", "oneof method"},
			want: []string{"ONEOF_ADDED #/Order/method", "ONEOF_REMOVED #/Order/payment"}, compatible: true},
		{name: "oneof field moved to top level", edits: []string{"    string iban = 7;\n  }", "  }\n  string iban = 7;"},
			want: []string{"ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/Order/7"}, compatible: true},
		{name: "one field moved into an existing oneof", edits: []string{"  int64 amount = 2;\n", "", "string iban = 7;", "string iban = 7;\n    int64 amount = 2;"},
			want: []string{"FIELD_MOVED_TO_EXISTING_ONEOF #/Order/payment"}, detail: "mutually exclusive in oneof payment"},
		{name: "several fields moved into a new oneof", edits: []string{"  string id = 1;\n  int64 amount = 2;\n", "  oneof ident {\n    string id = 1;\n    int64 amount = 2;\n  }\n"},
			want: []string{"MULTIPLE_FIELDS_MOVED_TO_ONEOF #/Order/ident", "ONEOF_ADDED #/Order/ident"}},
		{name: "one field wrapped in a new oneof", edits: []string{"  string id = 1;\n", "  oneof ident { string id = 1; }\n"},
			want: []string{"ONEOF_ADDED #/Order/ident"}, compatible: true},
		// A oneof member has no label in the Confluent registry (wire's
		// parser and its descriptor conversion both give it none), so moving
		// an optional field into or out of a oneof compares no labels.
		{name: "proto2 optional field wrapped in a new oneof", original: `syntax = "proto2"; message M { optional int32 x = 1; }`,
			edits: []string{`syntax = "proto2"; message M { oneof o { int32 x = 1; } }`},
			want:  []string{"ONEOF_ADDED #/M/o"}, compatible: true},
		{name: "proto2 oneof field moved to an optional field", original: `syntax = "proto2"; message M { oneof o { int32 x = 1; } }`,
			edits: []string{`syntax = "proto2"; message M { optional int32 x = 1; }`},
			want:  []string{"ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/M/1", "ONEOF_REMOVED #/M/o"}, compatible: true},
		{name: "proto3 optional field wrapped in a new oneof", original: `syntax = "proto3"; message M { optional double x = 1; }`,
			edits: []string{`syntax = "proto3"; message M { oneof o { double x = 1; } }`},
			want:  []string{"ONEOF_ADDED #/M/o"}, compatible: true},
		{name: "type change inside a oneof", edits: []string{"string card = 6;", "int64 card = 6;"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/payment/6"}},
		{name: "proto3 optional is not a oneof", edits: []string{"int64 amount = 2;", "optional int64 amount = 2;"}, compatible: true},
		{name: "nested message field changed", edits: []string{"message Line { string sku = 1; }", "message Line { int32 sku = 1; }"},
			want: []string{"FIELD_SCALAR_KIND_CHANGED #/Order/Line/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := base
			if tc.original != "" {
				orig = tc.original
			}
			upd := orig
			if len(tc.edits) == 1 {
				upd = tc.edits[0]
			} else if len(tc.edits) > 0 {
				upd = edit(t, tc.edits...)
			}
			diffs := Diff(mustCompile(t, orig), mustCompile(t, upd))
			var got []string
			for _, d := range diffs {
				got = append(got, d.String())
			}
			if strings.Join(sorted(got), "\n") != strings.Join(sorted(tc.want), "\n") {
				t.Fatalf("differences\n got  %q\n want %q", got, tc.want)
			}
			bad := Incompatible(diffs)
			if (len(bad) == 0) != tc.compatible {
				t.Fatalf("compatible = %v, want %v (%v)", len(bad) == 0, tc.compatible, bad)
			}
			if tc.detail != "" && !strings.Contains(bad[0].Detail, tc.detail) {
				t.Errorf("detail %q does not name %q", bad[0].Detail, tc.detail)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestDiffImports: a message type imported from another file is compared
// again unless both schemas take it from the same place.
func TestDiffImports(t *testing.T) {
	money := func(typ, origin string) File {
		return File{Path: "shop/money.proto", Origin: origin,
			Source: `syntax = "proto3"; package shop.money; message Money { ` + typ + ` units = 1; string currency = 2; }`}
	}
	const order = `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { shop.money.Money total = 1; }`
	for _, tc := range []struct {
		name     string
		old, new File
		want     []string
	}{
		{"same reference", money("int64", "money/1"), money("int64", "money/1"), nil},
		{"same reference, no comparison", money("int64", "money/1"), money("string", "money/1"), nil},
		{"new compatible version", money("int64", "money/1"), money("uint64", "money/2"), nil},
		{"new incompatible version", money("int64", "money/1"), money("string", "money/2"),
			[]string{"FIELD_SCALAR_KIND_CHANGED #/Money/1", "FIELD_NAMED_TYPE_CHANGED #/Order/1"}},
		{"unknown origin", money("int64", ""), money("string", ""),
			[]string{"FIELD_SCALAR_KIND_CHANGED #/Money/1", "FIELD_NAMED_TYPE_CHANGED #/Order/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Diff(mustCompile(t, order, tc.old), mustCompile(t, order, tc.new)) {
				got = append(got, d.String())
			}
			if strings.Join(sorted(got), "\n") != strings.Join(sorted(tc.want), "\n") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDiffRecursiveImport: a message that contains itself, imported, is
// compared once and the comparison ends.
func TestDiffRecursiveImport(t *testing.T) {
	node := func(typ string) File {
		return File{Path: "tree.proto", Source: `syntax = "proto3"; package tree; message Node { ` + typ + ` v = 1; repeated Node children = 2; Node parent = 3; }`}
	}
	const src = `syntax = "proto3"; import "tree.proto"; message Doc { tree.Node root = 1; }`
	diffs := Diff(mustCompile(t, src, node("int32")), mustCompile(t, src, node("string")))
	var got []string
	for _, d := range diffs {
		got = append(got, d.String())
	}
	want := []string{"FIELD_SCALAR_KIND_CHANGED #/Node/1", "FIELD_NAMED_TYPE_CHANGED #/Doc/1"}
	if strings.Join(sorted(got), "\n") != strings.Join(sorted(want), "\n") {
		t.Fatalf("got %q, want %q", got, want)
	}
}
