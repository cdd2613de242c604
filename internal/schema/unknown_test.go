package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestUnknownFieldsAnywhere: a field the schema lacks is refused wherever
// the value holds it: in any element of a repeated message field (the
// last one included), in any value of a map of messages, and whichever
// other message fields the value sets around it. Iteration over a
// message's fields and a map's entries has no order (dynamicpb ranges Go
// maps), so the check is run several times over values with many
// message fields or entries: an error that a field checked later
// overwrote went unnoticed in some orders only.
func TestUnknownFieldsAnywhere(t *testing.T) {
	var src strings.Builder
	src.WriteString(`syntax = "proto3"; message Inner { string s = 1; }` + "\n" +
		`message Wide { repeated Inner list = 1; map<string, Inner> byKey = 2;`)
	const fields = 16
	for i := range fields {
		fmt.Fprintf(&src, " Inner f%d = %d;", i, 10+i)
	}
	src.WriteString(" }")
	wide, err := mustCompile(t, src.String()).MessageType("Wide")
	if err != nil {
		t.Fatal(err)
	}
	inner := func(unknown bool) []byte {
		b := protowire.AppendTag(nil, 1, protowire.BytesType)
		b = protowire.AppendString(b, "x")
		if unknown {
			b = protowire.AppendTag(b, 7, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
		return b
	}
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	entry := func(key string, unknown bool) []byte {
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendString(e, key)
		return field(e, 2, inner(unknown))
	}
	// Every field of Wide set, one of them (bad) with field 7 in its Inner.
	value := func(bad string) []byte {
		var b []byte
		for i := range 3 {
			b = field(b, 1, inner(bad == "list" && i == 2)) // the last element
		}
		for i := range fields {
			b = field(b, 2, entry(fmt.Sprint("k", i), bad == "map" && i == 5))
		}
		for i := range fields {
			b = field(b, protowire.Number(10+i), inner(bad == fmt.Sprint("f", i)))
		}
		return b
	}
	if err := wide.Validate(value("")); err != nil {
		t.Fatalf("a value of known fields only: %v", err)
	}
	for _, bad := range []string{"list", "map", "f0", "f7", "f15"} {
		b := value(bad)
		for range 8 {
			if err := wide.Validate(b); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "field number 7 is not in Inner") {
				t.Fatalf("field 7 in %s: %v, want ErrValue naming it", bad, err)
			}
		}
	}
}
