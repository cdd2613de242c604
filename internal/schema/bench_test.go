package schema

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkValue: what checking a typed value costs per write, against
// taking the bytes as they are (untyped): binary checked, JSON converted.
func BenchmarkValue(b *testing.B) {
	s := mustCompile(b, shop)
	order, _ := s.MessageType("shop.Order")
	j := []byte(`{"id": "o-1", "amount": "250", "status": "OPEN", "lines": {"a": {"sku": "x", "qty": 2}, "b": {"sku": "y", "qty": 1}}, "customers": [{"name": "ann"}]}`)
	bin, err := order.FromJSON(j)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("untyped", func(b *testing.B) {
		b.SetBytes(int64(len(bin)))
		var sink []byte
		for b.Loop() {
			sink = append(sink[:0], bin...)
		}
	})
	b.Run("binary", func(b *testing.B) {
		b.SetBytes(int64(len(bin)))
		for b.Loop() {
			if err := order.Validate(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(j)))
		for b.Loop() {
			if _, err := order.FromJSON(j); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		var buf []byte
		idx := order.Indexes()
		for b.Loop() {
			buf = AppendWire(buf[:0], 7, idx, bin)
		}
	})
}

// BenchmarkCheck: a compatibility check of one change (registration
// time), compiling included.
func BenchmarkCheck(b *testing.B) {
	old := mustCompile(b, base)
	prev := []Version{{Version: 1, Schema: old, Text: base}}
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			mustCompile(b, base)
		}
	})
	b.Run("full", func(b *testing.B) {
		upd := mustCompile(b, base+"message Extra { int32 e = 1; }\n")
		for b.Loop() {
			Check(Full, upd, prev)
		}
	})
}

// BenchmarkDiffOneofs: the diff of a message with many oneofs, each with a
// field (a oneof's synthetic check used to scan the message's fields:
// quadratic in their number).
func BenchmarkDiffOneofs(b *testing.B) {
	for _, n := range []int{100, 2000} {
		var src strings.Builder
		src.WriteString("syntax = \"proto3\";\npackage bench;\nmessage M {\n")
		for i := range n {
			fmt.Fprintf(&src, "  oneof o%d { int32 f%d = %d; }\n  optional int32 p%d = %d;\n", i, i, 2*i+1, i, 2*i+2)
		}
		src.WriteString("}\n")
		s := mustCompile(b, src.String())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if d := Diff(s, s); len(d) != 0 {
					b.Fatalf("a schema differs from itself: %v", d)
				}
			}
		})
	}
}
