package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// reservedLine is a proto3 message whose reserved names are all on one
// line: n of them.
func reservedLine(n int) string {
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\nmessage M {\n  int32 a = 1;\n  reserved ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"n%d\"", i)
	}
	b.WriteString(";\n}\n")
	return b.String()
}

// TestTokensPerLine: protocompile finds a token's column by scanning its
// line from the start, so a line of many tokens costs time quadratic in
// its length: 250 KiB of reserved names on one line (under the default
// max_schema_bytes) took about 5 s of CPU, and went on after the request's
// timeout. A line of more than maxLineTokens tokens is refused, naming it;
// as many on their own lines, or a long string, compile.
func TestTokensPerLine(t *testing.T) {
	t.Parallel()
	many := reservedLine(25_000) // 250 KiB, 50,000 tokens on line 4
	long := "syntax = \"proto3\";\nimport \"google/protobuf/descriptor.proto\";\n" +
		"extend google.protobuf.MessageOptions { string doc = 50001; }\n" +
		"message M { option (doc) = \"" + strings.Repeat("x", 200_000) + "\"; int32 a = 1; }\n"
	for _, tc := range []struct {
		name, src string
		err       string
	}{
		{"fits", reservedLine(maxLineTokens/2 - 2), ""},
		{"many tokens on a line", many, fmt.Sprintf("schema.proto:4: a line of more than %d tokens", maxLineTokens)},
		{"as many on their own lines", strings.ReplaceAll(many, ", ", ",\n"), ""},
		{"a long string", long, ""},
		{"tokens in a comment", "syntax = \"proto3\";\n// " + strings.Repeat("a, ", 50_000) + "\nmessage M { int32 a = 1; }\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Compile(ctx, File{Source: tc.src}, nil, Limits{})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err %v, want ErrInvalid with %q", err, tc.err)
			}
		})
	}
}
