package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestCompileSerializedMalformed: a serialized descriptor is checked as
// strictly as a .proto file's text is (protodesc's rules): one that no
// compiler would write is refused with ErrInvalid. protocompile links a
// given descriptor with few checks, so a message field with no type name
// compiled, was registered, and then made Diff (every later registration
// under the subject) and the value checks panic with a nil descriptor.
func TestCompileSerializedMalformed(t *testing.T) {
	good := func() *descriptorpb.FileDescriptorProto {
		return protodesc.ToFileDescriptorProto(mustCompile(t, `syntax = "proto3"; package shop;
message Order { string id = 1; Customer customer = 2; map<string, int32> counts = 3; }
message Customer { string name = 1; }
enum Status { UNKNOWN = 0; }`).File())
	}
	for _, tc := range []struct {
		name   string
		break_ func(f *descriptorpb.FileDescriptorProto)
	}{
		{"message field without a type name", func(f *descriptorpb.FileDescriptorProto) { f.MessageType[0].Field[1].TypeName = nil }},
		{"field without a type", func(f *descriptorpb.FileDescriptorProto) {
			f.MessageType[0].Field[1].Type, f.MessageType[0].Field[1].TypeName = nil, nil
		}},
		{"unknown syntax", func(f *descriptorpb.FileDescriptorProto) { f.Syntax = proto.String("201111201100") }},
		{"field without a name", func(f *descriptorpb.FileDescriptorProto) { f.MessageType[0].Field[0].Name = nil }},
		{"field number 0", func(f *descriptorpb.FileDescriptorProto) { f.MessageType[0].Field[0].Number = proto.Int32(0) }},
		{"two fields with one number", func(f *descriptorpb.FileDescriptorProto) { f.MessageType[0].Field[1].Number = proto.Int32(1) }},
		{"message without a name", func(f *descriptorpb.FileDescriptorProto) { f.MessageType[1].Name = nil }},
		{"proto3 enum not starting at 0", func(f *descriptorpb.FileDescriptorProto) { f.EnumType[0].Value[0].Number = proto.Int32(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good()
			tc.break_(f)
			b, err := proto.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			src := base64.StdEncoding.EncodeToString(b)
			s, err := Compile(context.Background(), File{Source: src}, nil, Limits{})
			if !errors.Is(err, ErrInvalid) {
				// Accepted: it must at least compare without panicking.
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Compile accepted it (err %v) and Diff panicked: %v", err, r)
					}
				}()
				_ = Diff(s, s)
				t.Fatalf("Compile = %v, want ErrInvalid", err)
			}
		})
	}
	// The well-formed descriptor still compiles.
	b, _ := proto.Marshal(good())
	if _, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{}); err != nil {
		t.Fatalf("the good descriptor: %v", err)
	}
}

// FuzzCompileSerialized: any bytes sent as a serialized descriptor (base64,
// as confluent-kafka's serializers register schemas) compile or fail with
// ErrInvalid, never a panic; what compiles can be compared, fingerprinted
// and checked against a value.
func FuzzCompileSerialized(f *testing.F) {
	good := protodesc.ToFileDescriptorProto(mustCompile(f, `syntax = "proto3"; package shop;
message Order { string id = 1; Customer customer = 2; map<string, int32> counts = 3; oneof o { int64 a = 4; } }
message Customer { string name = 1; }
enum Status { UNKNOWN = 0; }`).File())
	b, err := proto.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	good.MessageType[0].Field[1].TypeName = nil
	if b, err = proto.Marshal(good); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Compile(context.Background(), File{Source: base64.StdEncoding.EncodeToString(b)}, nil, Limits{MaxFileBytes: 1 << 14})
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
