package schema

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// nestedDescriptor is a base64 FileDescriptorProto whose message M nests
// a message N in itself depth levels deep: a schema as the registry takes
// it "serialized".
func nestedDescriptor(depth int) string {
	cur := &descriptorpb.DescriptorProto{Name: proto.String("N")}
	for i := 1; i < depth; i++ {
		cur = &descriptorpb.DescriptorProto{Name: proto.String("N"), NestedType: []*descriptorpb.DescriptorProto{cur}}
	}
	cur.Name = proto.String("M")
	b, _ := proto.Marshal(&descriptorpb.FileDescriptorProto{Name: proto.String("x.proto"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{cur}})
	return base64.StdEncoding.EncodeToString(b)
}

// nestedText is nestedDescriptor's schema as .proto text.
func nestedText(depth int) string {
	return "syntax = \"proto3\";\nmessage M {" + strings.Repeat(" message N {", depth-1) + strings.Repeat(" }", depth-1) + " }\n"
}

// TestSerializedNesting: a schema sent as a serialized descriptor is held
// to the nesting depth of a .proto file's text (less than 32): 9,900
// levels fit in protobuf's decoder, and compiling them took 800 MB and a
// second per request.
func TestSerializedNesting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{1, true}, {31, true}, {32, false}, {9900, false}} {
		for form, src := range map[string]string{"serialized": nestedDescriptor(tc.depth), "text": nestedText(tc.depth)} {
			t.Run(fmt.Sprintf("%s %d", form, tc.depth), func(t *testing.T) {
				_, err := Compile(context.Background(), File{Source: src}, nil, Limits{MaxFileBytes: 1 << 20})
				if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nesting depth"))) {
					t.Fatalf("nested %d deep: %v; want ok %v, else a nesting depth refusal", tc.depth, err, tc.ok)
				}
			})
		}
	}
}

// deepOption is a schema whose message option is a message literal nested
// depth levels deep: "{" then, inside, delimiters open and close ("{" "}"
// or "<" ">").
func deepOption(depth int, open, close string) string {
	many := strings.Repeat("{[<", 100)
	return `syntax = "proto3";
import "google/protobuf/descriptor.proto";
message V { V v = 1; }
extend google.protobuf.MessageOptions { V vv = 50000; }
// a comment's ` + many + ` and a string's do not count
message M {
  option (vv) = {` + strings.Repeat("v: "+open, depth-1) + strings.Repeat(close, depth-1) + `};
  string s = 1 [json_name = "` + many + `\"'"]; /* ` + many + ` */ string t = 2 [json_name = '` + many + `\'"'];
}
`
}

// TestOptionLiteralNesting: an option's message literal may nest only so
// deep (maxBrackets, with the file's own braces). protocompile's option
// interpreter takes time and memory quadratic in that depth: 52,000
// levels, a 254 KiB schema under the registry's default
// max_schema_bytes, took 70 s and 11 GB to compile, so one registration
// could take the server down.
func TestOptionLiteralNesting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		depth       int
		open, close string
		ok          bool
	}{
		{1, "{", "}", true},
		{90, "{", "}", true},
		{90, "<", ">", true},
		{2000, "{", "}", false},
		{2000, "<", ">", false},
	} {
		t.Run(fmt.Sprintf("%s%d", tc.open, tc.depth), func(t *testing.T) {
			_, err := Compile(context.Background(), File{Source: deepOption(tc.depth, tc.open, tc.close)}, nil, Limits{})
			if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "schema.proto:7:"))) {
				t.Fatalf("option literal %d deep: %v; want ok %v, else ErrInvalid naming line 7", tc.depth, err, tc.ok)
			}
		})
	}
}
