package pebble

import (
	"encoding/binary"
	"testing"
)

// FuzzDecodeRow: a row's value is read from disk: whatever it holds,
// decoding it does not panic, and a row it takes has the version of its
// first 8 bytes and, unless a tombstone, the value after its header
// (and schema id), copied.
func FuzzDecodeRow(f *testing.F) {
	row := func(version uint64, flags byte, schema uint32, value string) []byte {
		b := binary.BigEndian.AppendUint64(nil, version)
		b = append(b, flags)
		if flags == flagSchema {
			b = binary.BigEndian.AppendUint32(b, schema)
		}
		return append(b, value...)
	}
	f.Add(row(7, 0, 0, "v"))
	f.Add(row(7, 0, 0, ""))
	f.Add(row(1<<63, flagTombstone, 0, ""))
	f.Add(row(9, flagSchema, 42, "payload"))
	f.Add(row(9, flagSchema, 42, "")[:headerLen+2])
	f.Add(row(9, 0x80, 0, "x"))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRow(v)
		if err != nil {
			return
		}
		if r.Version != binary.BigEndian.Uint64(v) {
			t.Fatalf("version %d from %x", r.Version, v)
		}
		head := headerLen
		switch v[8] {
		case flagTombstone:
			if !r.Deleted || r.Value != nil {
				t.Fatalf("tombstone read as %+v", r)
			}
			return
		case flagSchema:
			head += schemaLen
			if r.SchemaID != binary.BigEndian.Uint32(v[headerLen:]) {
				t.Fatalf("schema id %d from %x", r.SchemaID, v)
			}
		}
		if r.Deleted || r.Value == nil || string(r.Value) != string(v[head:]) {
			t.Fatalf("row %+v from %x", r, v)
		}
		if len(r.Value) > 0 && &r.Value[0] == &v[head] {
			t.Fatal("the value aliases Pebble's bytes")
		}
	})
}
