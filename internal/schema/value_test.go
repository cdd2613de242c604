package schema

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const shop = `syntax = "proto3";
package shop;
enum Status { UNKNOWN = 0; OPEN = 1; }
message Customer { string name = 1; }
message Order {
  string id = 1;
  int64 amount = 2;
  Status status = 3;
  map<string, Line> lines = 4;
  repeated Customer customers = 5;
  message Line { string sku = 1; int32 qty = 2; message Note { string text = 1; } }
  message Refund { int64 amount = 1; }
}
`

func TestMessageValues(t *testing.T) {
	s := mustCompile(t, shop)
	order, err := s.MessageType("shop.Order")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := order.FromJSON([]byte(`{"id": "o-1", "amount": "250", "status": "OPEN", "lines": {"a": {"sku": "x", "qty": 2}}, "customers": [{"name": "ann"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := order.Validate(bin); err != nil {
		t.Fatalf("validate what FromJSON made: %v", err)
	}
	j, err := order.ToJSON(bin)
	if err != nil || !strings.Contains(string(j), `"amount":"250"`) || !strings.Contains(string(j), `"status":"OPEN"`) {
		t.Fatalf("ToJSON: %s, %v", j, err)
	}
	// The same row in other JSON spellings gives the same bytes.
	again, err := order.FromJSON([]byte(`{"customers": [{"name": "ann"}], "lines": {"a": {"qty": 2, "sku": "x"}}, "status": 1, "amount": 250, "id": "o-1"}`))
	if err != nil || string(again) != string(bin) {
		t.Fatalf("FromJSON is not canonical: %x vs %x (%v)", again, bin, err)
	}

	unknownTop := protowire.AppendTag(slices.Clone(bin), 9, protowire.VarintType)
	unknownTop = protowire.AppendVarint(unknownTop, 1)
	// An unknown field inside a map value: Line is {sku, qty}; field 7 is not.
	line := protowire.AppendTag(nil, 7, protowire.VarintType)
	line = protowire.AppendVarint(line, 1)
	entry := protowire.AppendTag(nil, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "b")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendBytes(entry, line)
	unknownDeep := protowire.AppendTag(slices.Clone(bin), 4, protowire.BytesType)
	unknownDeep = protowire.AppendBytes(unknownDeep, entry)
	for _, tc := range []struct {
		name string
		fn   func() error
		want string
	}{
		{"garbage", func() error { return order.Validate([]byte{0xff, 0xff, 0xff}) }, "not a shop.Order in Protobuf binary"},
		{"unknown field", func() error { return order.Validate(unknownTop) }, "field number 9 is not in shop.Order: register the schema that has it first"},
		{"unknown nested field", func() error { return order.Validate(unknownDeep) }, "field number 7 is not in shop.Order.Line"},
		{"json unknown name", func() error { _, err := order.FromJSON([]byte(`{"idd": "x"}`)); return err }, `unknown field "idd"`},
		{"json wrong type", func() error { _, err := order.FromJSON([]byte(`{"amount": "lots"}`)); return err }, "not a shop.Order in Protobuf JSON"},
		{"json not json", func() error { _, err := order.FromJSON([]byte(`<order/>`)); return err }, "Protobuf JSON"},
	} {
		if err := tc.fn(); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrValue with %q", tc.name, err, tc.want)
		}
	}

	req := mustCompile(t, `syntax = "proto2"; message R { required int32 x = 1; }`)
	r, _ := req.MessageType("R")
	if err := r.Validate(nil); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "x") {
		t.Errorf("missing required field: %v", err)
	}
}

func TestMessageIndexes(t *testing.T) {
	s := mustCompile(t, shop)
	for _, tc := range []struct {
		name string
		want []int
	}{
		{"shop.Customer", []int{0}},
		{"shop.Order", []int{1}},
		{"shop.Order.Line", []int{1, 0}}, // the map entry LinesEntry is not counted
		{"shop.Order.Line.Note", []int{1, 0, 0}},
		{"shop.Order.Refund", []int{1, 1}},
	} {
		m, err := s.MessageType(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Indexes(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: indexes %v, want %v", tc.name, got, tc.want)
		}
		back, err := s.ByIndexes(tc.want)
		if err != nil || back.Descriptor().FullName() != m.Descriptor().FullName() {
			t.Errorf("ByIndexes(%v) = %v, %v", tc.want, back.Descriptor(), err)
		}
	}
	if _, err := s.ByIndexes([]int{7}); !errors.Is(err, ErrValue) {
		t.Errorf("ByIndexes out of range: %v", err)
	}
	// In descriptor form the map entry Order.LinesEntry is a nested
	// message like any other, and counts.
	ds, err := FromDescriptorSet(s.DescriptorSet(), "")
	if err != nil {
		t.Fatal(err)
	}
	line, _ := ds.MessageType("shop.Order.Line")
	if got := line.Indexes(); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("descriptor form: shop.Order.Line at %v, want [1 1]", got)
	}
	if back, err := ds.ByIndexes([]int{1, 1}); err != nil || back.Descriptor().FullName() != "shop.Order.Line" {
		t.Errorf("descriptor form ByIndexes([1 1]) = %v, %v", back.Descriptor(), err)
	}
}

// TestWireGolden: the Confluent wire format, byte for byte
// (testdata/wire/*.hex; -update rewrites them).
func TestWireGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      uint32
		indexes []int
		payload []byte
	}{
		{"first-message", 1, []int{0}, []byte{0x0a, 0x03, 'o', '-', '1'}},
		{"second-message", 258, []int{1}, []byte{0x10, 0x01}},
		{"nested", 0x01020304, []int{1, 0, 2}, nil},
		{"large-index", 7, []int{200}, []byte{0x08, 0x96, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendWire(nil, tc.id, tc.indexes, tc.payload)
			path := filepath.Join("testdata", "wire", tc.name+".hex")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != strings.TrimSpace(string(want)) {
				t.Fatalf("wire %x, golden %s", got, want)
			}
			id, idx, payload, err := ParseWire(got)
			if err != nil || id != tc.id || !slices.Equal(idx, tc.indexes) || string(payload) != string(tc.payload) {
				t.Fatalf("ParseWire: %d %v %x %v", id, idx, payload, err)
			}
		})
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 1, 0x7f}, {0, 0, 0, 0, 1, 0xff}, {0, 0, 0, 0, 1, 4, 2}} {
		if _, _, _, err := ParseWire(bad); !errors.Is(err, ErrValue) {
			t.Errorf("ParseWire(%x): %v", bad, err)
		}
	}
}

// FuzzParseWire: any bytes parse or fail with ErrValue; what parses
// appends back to bytes that parse the same (varints may be overlong).
func FuzzParseWire(f *testing.F) {
	f.Add(AppendWire(nil, 1, []int{0}, []byte("x")))
	f.Add(AppendWire(nil, 9, []int{3, 1, 4}, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, idx, payload, err := ParseWire(b)
		if err != nil {
			if !errors.Is(err, ErrValue) {
				t.Fatal(err)
			}
			return
		}
		again := AppendWire(nil, id, idx, payload)
		id2, idx2, payload2, err := ParseWire(again)
		if err != nil || id2 != id || !slices.Equal(idx2, idx) || string(payload2) != string(payload) {
			t.Fatalf("%x parsed as %d %v %x, appends as %x, parsed again as %d %v %x %v", b, id, idx, payload, again, id2, idx2, payload2, err)
		}
	})
}

// TestPrint: Print leaves out fields the message lacks (older or newer
// rows) and is compact; malformed bytes are ErrValue.
func TestPrint(t *testing.T) {
	s, err := Compile(context.Background(), File{Source: `syntax = "proto3"; package p; message M { string a = 1; int64 b = 2; }`}, nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.MessageType("M")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  bool
	}{
		{"known fields", []byte{0x0a, 0x01, 'x', 0x10, 0x05}, `{"a":"x","b":"5"}`, false},
		{"a field it lacks", []byte{0x0a, 0x01, 'x', 0x18, 0x01}, `{"a":"x"}`, false},
		{"empty", nil, `{}`, false},
		{"malformed", []byte{0x0a, 0x05}, "", true},
	} {
		got, err := m.Print(tc.in)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrValue)) || string(got) != tc.want {
			t.Errorf("%s: %s, %v; want %s (error %t)", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// FuzzMessageValues: what a typed table's writer sends (Protobuf binary
// or JSON, any bytes) never panics the checks; a JSON value converts to
// binary that passes the check and prints; a value that passes the check
// goes through JSON and back to the same bytes as its JSON's conversion.
func FuzzMessageValues(f *testing.F) {
	s, err := Compile(context.Background(), File{Source: shop}, nil, Limits{})
	if err != nil {
		f.Fatal(err)
	}
	order, err := s.MessageType("shop.Order")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id": "o-1", "amount": "250", "status": "OPEN", "lines": {"a": {"sku": "x", "qty": 2}}, "customers": [{"name": "ann"}]}`))
	f.Add([]byte{0x0a, 0x03, 'o', '-', '1', 0x10, 0xfa, 0x01})
	f.Add([]byte{0x22, 0x05, 0x0a, 0x01, 'a', 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = order.Print(b)
		if bin, err := order.FromJSON(b); err == nil {
			if err := order.Validate(bin); err != nil {
				t.Fatalf("JSON %q converted to %x, which the check refuses: %v", b, bin, err)
			}
			if _, err := order.Print(bin); err != nil {
				t.Fatalf("converted %x does not print: %v", bin, err)
			}
		}
		if order.Validate(b) != nil {
			return
		}
		j, err := order.ToJSON(b)
		if err != nil {
			t.Fatalf("checked %x does not print: %v", b, err)
		}
		once, err := order.FromJSON(j)
		if err != nil {
			t.Fatalf("checked %x printed %s, which does not convert back: %v", b, j, err)
		}
		j2, err := order.ToJSON(once)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := order.FromJSON(j2)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("JSON round trip not stable: %x then %x (%v)", once, twice, err)
		}
	})
}
