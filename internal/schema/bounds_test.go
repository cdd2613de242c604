package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestLimitsAreInclusive: a schema at a limit compiles (MaxFiles imports,
// a file of MaxFileBytes bytes, a line of maxLineTokens tokens, brackets
// maxBrackets deep); one past it does not.
func TestLimitsAreInclusive(t *testing.T) {
	ctx := context.Background()
	src := `syntax = "proto3"; message M {}`
	imports := []File{{Path: "a.proto", Source: `syntax = "proto3";`}, {Path: "b.proto", Source: `syntax = "proto3";`}}
	if _, err := Compile(ctx, File{Source: src}, imports, Limits{MaxFiles: 2}); err != nil {
		t.Errorf("MaxFiles imports: %v", err)
	}
	if _, err := Compile(ctx, File{Source: src}, imports, Limits{MaxFiles: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("MaxFiles+1 imports: %v", err)
	}
	if _, err := Compile(ctx, File{Source: src}, nil, Limits{MaxFileBytes: len(src)}); err != nil {
		t.Errorf("a file of MaxFileBytes: %v", err)
	}
	if _, err := Compile(ctx, File{Source: src}, nil, Limits{MaxFileBytes: len(src) - 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a file of MaxFileBytes+1: %v", err)
	}
	// "a" alone on a line is one token; spaces separate them.
	line := func(n int) string { return strings.TrimSpace(strings.Repeat("a ", n)) }
	if err := checkText("x.proto", line(maxLineTokens)); err != nil {
		t.Errorf("a line of maxLineTokens tokens: %v", err)
	}
	if err := checkText("x.proto", line(maxLineTokens+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a line of maxLineTokens+1 tokens: %v", err)
	}
	nest := func(n int) string { return strings.Repeat("{\n", n) + strings.Repeat("}\n", n) }
	if err := checkText("x.proto", nest(maxBrackets)); err != nil {
		t.Errorf("braces maxBrackets deep: %v", err)
	}
	if err := checkText("x.proto", nest(maxBrackets+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("braces maxBrackets+1 deep: %v", err)
	}
}

// TestParseWireBounds: at most maxIndexes message indexes, none negative.
func TestParseWireBounds(t *testing.T) {
	for _, n := range []int{maxIndexes, maxIndexes + 1} {
		b := AppendWire(nil, 1, make([]int, n), nil)
		_, idx, _, err := ParseWire(b)
		switch {
		case n <= maxIndexes && (err != nil || len(idx) != n):
			t.Errorf("%d indexes: %v, %v", n, idx, err)
		case n > maxIndexes && !errors.Is(err, ErrValue):
			t.Errorf("%d indexes: %v, want ErrValue", n, err)
		}
	}
	neg := []byte{0, 0, 0, 0, 1}
	neg = protowire.AppendVarint(neg, protowire.EncodeZigZag(1))
	neg = protowire.AppendVarint(neg, protowire.EncodeZigZag(-1))
	if _, idx, _, err := ParseWire(neg); !errors.Is(err, ErrValue) {
		t.Errorf("a negative message index: %v, %v; want ErrValue", idx, err)
	}
}

// TestByNoIndexes: no message indexes name no message.
func TestByNoIndexes(t *testing.T) {
	s := mustCompile(t, shop)
	for _, idx := range [][]int{nil, {}} {
		if m, err := s.ByIndexes(idx); !errors.Is(err, ErrValue) {
			t.Errorf("ByIndexes(%v) = %v, %v; want ErrValue", idx, m.Descriptor(), err)
		}
	}
}

// TestMessageNames: a name two messages share is ambiguous; map entries
// are not messages of the schema.
func TestMessageNames(t *testing.T) {
	s := mustCompile(t, `syntax = "proto3"; package p;
message A { message Item { int32 a = 1; } map<string, Item> items = 1; }
message B { message Item { int32 b = 1; } }`)
	if m, err := s.MessageType("Item"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "2 messages are named Item") {
		t.Errorf("MessageType(Item) = %v, %v; want ErrInvalid, ambiguous", m.Descriptor(), err)
	}
	if m, err := s.MessageType("p.B.Item"); err != nil || m.Descriptor().FullName() != "p.B.Item" {
		t.Errorf("MessageType(p.B.Item) = %v, %v", m.Descriptor(), err)
	}
	if got, want := s.MessageNames(), []string{"p.A", "p.A.Item", "p.B", "p.B.Item"}; !slices.Equal(got, want) {
		t.Errorf("MessageNames() = %v, want %v", got, want)
	}
	if _, err := s.MessageType("ItemsEntry"); !errors.Is(err, ErrInvalid) {
		t.Errorf("MessageType(ItemsEntry): %v, want ErrInvalid", err)
	}
}

// TestSerializedWithUnknownFields: base64 that decodes to a
// FileDescriptorProto with fields it does not define is not taken as a
// serialized schema (what it says is not all understood here).
func TestSerializedWithUnknownFields(t *testing.T) {
	b, err := proto.Marshal(&descriptorpb.FileDescriptorProto{Name: proto.String("x.proto"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{}); err != nil {
		t.Fatalf("the descriptor alone: %v", err)
	}
	b = protowire.AppendTag(b, 999, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	if s, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("with an unknown field: %v, %v; want ErrInvalid", s, err)
	}
}

// TestNormalizeOneofOrder: oneofs are ordered by the lowest number of
// their fields, whatever the numbers of their other fields, and the
// fields' oneof indexes follow.
func TestNormalizeOneofOrder(t *testing.T) {
	field := func(name string, num, oneof int32) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), OneofIndex: proto.Int32(oneof)}
	}
	// b {5} declared before a {1, 10}: a comes first (1 < 5), though its
	// highest number is above b's.
	m := &descriptorpb.DescriptorProto{
		Name:      proto.String("M"),
		OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("b")}, {Name: proto.String("a")}},
		Field:     []*descriptorpb.FieldDescriptorProto{field("b5", 5, 0), field("a10", 10, 1), field("a1", 1, 1)},
	}
	normalizeMessage(m)
	var oneofs, fields []string
	for _, o := range m.OneofDecl {
		oneofs = append(oneofs, o.GetName())
	}
	for _, f := range m.Field {
		fields = append(fields, f.GetName()+"@"+m.OneofDecl[f.GetOneofIndex()].GetName())
	}
	if !slices.Equal(oneofs, []string{"a", "b"}) || !slices.Equal(fields, []string{"a1@a", "b5@b", "a10@a"}) {
		t.Errorf("normalized oneofs %v, fields %v; want [a b], [a1@a b5@b a10@a]", oneofs, fields)
	}
}

// TestPrintPartial: Print prints a value that lacks a required field (one
// written before the field was required, or by a writer that skipped the
// check) with what it has, rather than refusing it.
func TestPrintPartial(t *testing.T) {
	r, err := mustCompile(t, `syntax = "proto2"; message R { required int32 x = 1; optional string s = 2; }`).MessageType("R")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Print([]byte{0x12, 0x01, 'a'}); err != nil || string(got) != `{"s":"a"}` {
		t.Errorf("Print of a value without its required field: %s, %v", got, err)
	}
}
