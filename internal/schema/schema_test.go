package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

func TestCompileErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		main    File
		imports []File
		lim     Limits
		want    string
	}{
		{"syntax error names line and column", File{Source: "syntax = \"proto3\";\nmessage M {\n  int32 x = ;\n}"}, nil, Limits{}, "schema.proto:3:13"},
		{"unknown type", File{Source: `syntax = "proto3"; message M { Missing x = 1; }`}, nil, Limits{}, "field M.x: unknown type Missing"},
		{"missing import", File{Source: `syntax = "proto3"; import "other.proto"; message M {}`}, nil, Limits{}, "add it as a reference"},
		{"file too large", File{Source: `syntax = "proto3"; message M {}` + strings.Repeat(" ", 100)}, nil, Limits{MaxFileBytes: 64}, "over the limit of 64"},
		{"too many imports", File{Source: `syntax = "proto3";`}, []File{{Path: "a.proto"}, {Path: "b.proto"}}, Limits{MaxFiles: 1}, "2 imported files, over the limit of 1"},
		{"duplicate file", File{Path: "a.proto", Source: `syntax = "proto3";`}, []File{{Path: "a.proto"}}, Limits{}, `two files named "a.proto"`},
		{"import cycle", File{Path: "a.proto", Source: `syntax = "proto3"; import "b.proto";`},
			[]File{{Path: "b.proto", Source: `syntax = "proto3"; import "a.proto";`}}, Limits{}, "cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(ctx, tc.main, tc.imports, tc.lim)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestCompileImportsAndWellKnownTypes(t *testing.T) {
	s := mustCompile(t, `syntax = "proto3"; package shop;
import "google/protobuf/timestamp.proto";
import "shop/money.proto";
message Order { google.protobuf.Timestamp at = 1; shop.money.Money total = 2; message Line {} }`,
		File{Path: "shop/money.proto", Source: `syntax = "proto3"; package shop.money; message Money { int64 units = 1; }`})
	if got := strings.Join(s.MessageNames(), ","); got != "shop.Order,shop.Order.Line" {
		t.Errorf("MessageNames = %s", got)
	}
	for _, name := range []string{"shop.Order", "Order", "Line", "shop.Order.Line"} {
		if _, err := s.Message(name); err != nil {
			t.Errorf("Message(%s): %v", name, err)
		}
	}
	if _, err := s.Message("Refund"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "shop.Order, shop.Order.Line") {
		t.Errorf("Message(Refund): %v", err)
	}
}

// TestDescriptorSetRoundTrip: a schema written as a FileDescriptorSet reads
// back as the same schema.
func TestDescriptorSetRoundTrip(t *testing.T) {
	s := mustCompile(t, `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { shop.money.Money total = 1; }`,
		File{Path: "shop/money.proto", Source: `syntax = "proto3"; package shop.money; message Money { int64 units = 1; }`})
	back, err := FromDescriptorSet(s.DescriptorSet(), "")
	if err != nil {
		t.Fatal(err)
	}
	if back.File().Path() != MainPath || len(Diff(s, back)) != 0 {
		t.Fatalf("round trip: path %s, differences %v", back.File().Path(), Diff(s, back))
	}
	if _, err := FromDescriptorSet([]byte("not a descriptor set"), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := FromDescriptorSet(s.DescriptorSet(), "nope.proto"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nope.proto") {
		t.Errorf("missing file: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	a := mustCompile(t, `syntax = "proto3"; message M { int32 x = 1; }`)
	b := mustCompile(t, "// a comment\nsyntax = \"proto3\";\n\nmessage M {\n  int32 x = 1; // x\n}\n")
	c := mustCompile(t, `syntax = "proto3"; message M { int64 x = 1; }`)
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("layout changed the fingerprint")
	}
	if a.Fingerprint() == c.Fingerprint() {
		t.Error("a type change kept the fingerprint")
	}
	imp := func(origin string) *Schema {
		return mustCompile(t, `syntax = "proto3"; import "d.proto"; message M { D d = 1; }`,
			File{Path: "d.proto", Source: `syntax = "proto3"; message D {}`, Origin: origin})
	}
	if imp("d/1").Fingerprint() == imp("d/2").Fingerprint() {
		t.Error("another reference version kept the fingerprint")
	}
}

// FuzzCompile: any text, as a file or an import, compiles or fails with
// ErrInvalid; never a panic.
func FuzzCompile(f *testing.F) {
	f.Add(`syntax = "proto3"; message M { int32 x = 1; }`, `syntax = "proto2"; message D { optional D d = 1; }`)
	f.Add("syntax = \"proto3\"; import \"d.proto\"; message M { map<string, D> m = 1; oneof o { int32 a = 2; } }", `syntax="proto3"; message D {}`)
	f.Add(`edition = "2023"; message M { int32 x = 1 [features.field_presence = IMPLICIT]; }`, "")
	// A base64 FileDescriptorProto with no json_name (shop.Order{string placed_at = 1;}).
	f.Add("CgdtLnByb3RvEgRzaG9wIhoKBU9yZGVyEhEKCXBsYWNlZF9hdBgBIAEoCWIGcHJvdG8z", "")
	f.Fuzz(func(t *testing.T, main, dep string) {
		s, err := Compile(context.Background(), File{Source: main}, []File{{Path: "d.proto", Source: dep}}, Limits{MaxFileBytes: 1 << 14})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		_ = Diff(s, s)
		_ = s.Fingerprint()
	})
}

// TestCompileSerialized: a schema sent as a base64 FileDescriptorProto (as
// confluent-kafka's Python serializer registers it) is the same schema as
// its text, imports included.
func TestCompileSerialized(t *testing.T) {
	money := File{Path: "shop/money.proto", Source: `syntax = "proto3"; package shop.money; message Money { int64 units = 1; }`}
	text := mustCompile(t, `syntax = "proto3"; package shop; import "shop/money.proto"; import "google/protobuf/timestamp.proto";
message Order { shop.money.Money total = 1; google.protobuf.Timestamp at = 2; }`, money)
	fdp := protodesc.ToFileDescriptorProto(text.File())
	fdp.Name = proto.String("order.proto") // the client's own file name
	b, err := proto.Marshal(fdp)
	if err != nil {
		t.Fatal(err)
	}
	ser, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, []File{money}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(text, ser); len(d) != 0 {
		t.Fatalf("serialized schema differs from its text: %v", d)
	}
	// The same meaning, another form (message indexes count map entries
	// in descriptors): another schema, as in the Confluent registry.
	if ser.Fingerprint() == text.Fingerprint() {
		t.Fatal("the descriptor form has the text form's fingerprint")
	}
	if _, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{}); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "shop/money.proto") {
		t.Fatalf("serialized schema without its import: %v", err)
	}
	if _, err := Compile(context.Background(), File{Source: "aGVsbG8="}, nil, Limits{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("base64 of something else: %v", err)
	}
	// Without json_name, as generated code embeds a descriptor (what
	// confluent-kafka's Python serializer registers): the default names.
	bare := protodesc.ToFileDescriptorProto(mustCompile(t, `syntax = "proto3"; package shop;
message Order { string placed_at = 1; message Line { int32 sku_id_2 = 1; } map<string, Line> line_by_sku = 2; }`).File())
	var clearNames func(ms []*descriptorpb.DescriptorProto)
	clearNames = func(ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			for _, f := range m.Field {
				f.JsonName = nil
			}
			clearNames(m.NestedType)
		}
	}
	clearNames(bare.MessageType)
	b, err = proto.Marshal(bare)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{})
	if err != nil {
		t.Fatalf("a descriptor without json_name: %v", err)
	}
	m, err := s.MessageType("shop.Order")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.FromJSON([]byte(`{"placedAt":"x","lineBySku":{"tea":{"skuId2":3}}}`)); err != nil {
		t.Fatalf("the default JSON names: %v", err)
	}
}

// TestCompileSerializedImport: an import may be a base64 serialized
// FileDescriptorProto too, as the Confluent registry takes it: what
// confluent-kafka's Python serializer registers for each file a message's
// file imports (under the import's path), before the message's own file,
// which references it. Imports were read as .proto text only, and such a
// schema was refused ("shop/money.proto:1:1: syntax error").
func TestCompileSerializedImport(t *testing.T) {
	moneyText := `syntax = "proto3"; package shop.money; message Money { int64 units = 1; string currency_code = 2; }`
	fdp := protodesc.ToFileDescriptorProto(mustCompile(t, moneyText).File())
	fdp.Name = proto.String("other/name.proto") // the path the import is named by wins
	for _, f := range fdp.MessageType[0].Field {
		f.JsonName = nil // as generated code embeds it
	}
	b, err := proto.Marshal(fdp)
	if err != nil {
		t.Fatal(err)
	}
	money := File{Path: "shop/money.proto", Source: base64.StdEncoding.EncodeToString(b), Origin: "shop/money.proto/1"}
	order := `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { shop.money.Money total = 1; }`
	s, err := Compile(context.Background(), File{Source: order}, []File{money}, Limits{})
	if err != nil {
		t.Fatalf("a schema importing a serialized file: %v", err)
	}
	m, err := s.MessageType("shop.Order")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.FromJSON([]byte(`{"total":{"units":"5","currencyCode":"EUR"}}`)); err != nil {
		t.Fatalf("a value of the imported type: %v", err)
	}
	// The same types as the text form of the import.
	text := mustCompile(t, order, File{Path: "shop/money.proto", Source: moneyText, Origin: "text"})
	if d := Incompatible(Diff(text, s)); len(d) != 0 {
		t.Fatalf("the serialized import differs from its text: %v", d)
	}
	// A serialized import is held to the rules a serialized schema is (a
	// message field without its type: protocompile links it).
	bad := protodesc.ToFileDescriptorProto(mustCompile(t, moneyText).File())
	bad.MessageType[0].Field[0].Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	if b, err = proto.Marshal(bad); err != nil {
		t.Fatal(err)
	}
	_, err = Compile(context.Background(), File{Source: order}, []File{{Path: "shop/money.proto", Source: base64.StdEncoding.EncodeToString(b)}}, Limits{})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("a broken serialized import: %v, want ErrInvalid", err)
	}
}

// TestJSONName: protoc's default JSON names.
func TestJSONName(t *testing.T) {
	for in, want := range map[string]string{"id": "id", "placed_at": "placedAt", "sku_id_2": "skuId2", "a__b": "aB", "_x": "X", "x_": "x", "iOS_app": "iOSApp"} {
		if got := jsonName(in); got != want {
			t.Errorf("jsonName(%q) = %q, want %q", in, got, want)
		}
	}
}
