package intent

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"google.golang.org/protobuf/proto"
)

// checkEventMarshalLikeProto fails unless e.Marshal and proto.Marshal of
// e.Proto() give the same bytes, or both fail; and unless Size is their
// length and MarshalID's id is EventID, inside the encoding.
func checkEventMarshalLikeProto(t *testing.T, e Event) {
	t.Helper()
	got, gotErr := e.Marshal()
	want, wantErr := proto.Marshal(e.Proto())
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%+v: Marshal error %v, proto.Marshal error %v", e, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%+v:\nMarshal       %x\nproto.Marshal %x", e, got, want)
	}
	if cap(got) != len(got) || e.Size() != len(got) {
		t.Errorf("%+v: sized %d (Size %d) for %d bytes", e, cap(got), e.Size(), len(got))
	}
	b, id, err := e.MarshalID()
	if err != nil || !bytes.Equal(b, got) {
		t.Fatalf("%+v: MarshalID %x, %v", e, b, err)
	}
	if string(id) != EventID(e.Table, e.Key, e.Version) || cap(id) != len(id) {
		t.Fatalf("%+v: MarshalID's id %q (capacity %d)", e, id, cap(id))
	}
	clear(b)
	if !bytes.Equal(id, make([]byte, len(id))) {
		t.Fatalf("%+v: the id is not inside the encoding", e)
	}
}

func TestEventMarshalLikeProto(t *testing.T) {
	traced := goldenEvent
	traced.Trace = WidestTrace
	deleted := goldenEvent
	deleted.Op, deleted.Value = Delete, nil
	cases := []struct {
		name string
		e    Event
	}{
		{"golden", goldenEvent},
		{"traced", traced},
		{"delete", deleted},
		{"typed", Event{Table: "t", Key: []byte("k"), Op: Upsert, Version: 1, Value: []byte{}, SchemaID: 42}},
		{"zero", Event{}},
		{"before 1970", Event{Table: "t", Key: []byte("k"), Op: Upsert, Version: 1, IntentAt: time.Unix(-5, 0), ResolvedAt: time.Unix(-1, 0)}},
		{"widest numbers", Event{Table: "t", Key: []byte("k"), Op: math.MaxUint8, Version: math.MaxUint64, CoveredIntents: math.MaxUint32,
			SchemaID: math.MaxUint32, IntentAt: time.UnixMicro(math.MaxInt64), ResolvedAt: time.UnixMicro(math.MinInt64)}},
		{"long key and value", Event{Table: "t", Key: bytes.Repeat([]byte("k"), 300), Version: 7, Value: bytes.Repeat([]byte("v"), 70000)}},
		{"invalid UTF-8 table", Event{Table: "\xff", Key: []byte("k"), Version: 1}},
		{"invalid UTF-8 trace", Event{Table: "t", Trace: "\xed\xa0\x80", Version: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkEventMarshalLikeProto(t, tc.e) })
	}
}

func FuzzEventMarshalLikeProto(f *testing.F) {
	f.Add("orders", []byte("k1"), uint8(1), uint64(1)<<40, []byte("v"), int64(1_700_000_000_000_000), int64(-1), uint32(3), uint32(0), "")
	f.Add("", []byte{}, uint8(0), uint64(0), []byte{}, int64(0), int64(math.MinInt64), uint32(0), uint32(7), "\xff")
	f.Fuzz(func(t *testing.T, table string, key []byte, op uint8, version uint64, value []byte, intentAt, resolvedAt int64,
		covered, schema uint32, trace string) {
		checkEventMarshalLikeProto(t, Event{Table: table, Key: key, Op: Op(op), Version: version, Value: value,
			IntentAt: time.UnixMicro(intentAt), ResolvedAt: time.UnixMicro(resolvedAt), CoveredIntents: covered, SchemaID: schema, Trace: trace})
	})
}

// protoIntent and protoEvent are UnmarshalIntent and UnmarshalEvent as
// they were before the hand-written decoders: proto.Unmarshal, then the
// same checks.
func protoIntent(b []byte) (Intent, error) {
	var m wailv1.Intent
	if err := proto.Unmarshal(b, &m); err != nil {
		return Intent{}, fmt.Errorf("decode intent: %w", err)
	}
	in := intentFromProto(&m)
	switch {
	case in.Op != Upsert && in.Op != Delete && in.Op != Abort:
		return Intent{}, fmt.Errorf("decode intent: invalid op %d", m.Op)
	case in.Version == 0:
		return Intent{}, fmt.Errorf("decode intent: zero version")
	case len(in.Key) == 0:
		return Intent{}, fmt.Errorf("decode intent: empty key")
	case len(in.Key) > MaxKeyBytes:
		return Intent{}, fmt.Errorf("decode intent: key of %d bytes, over %d", len(in.Key), MaxKeyBytes)
	case in.Version >= 1<<63:
		return Intent{}, fmt.Errorf("decode intent: version %d has bit 63 set", in.Version)
	case in.PublishedFloor >= in.Version:
		return Intent{}, fmt.Errorf("decode intent: published floor %d not below version %d", in.PublishedFloor, in.Version)
	}
	return in, nil
}

func protoEvent(b []byte) (Event, error) {
	var m wailv1.ChangeEvent
	if err := proto.Unmarshal(b, &m); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	e := EventFromProto(&m)
	switch {
	case e.Op != Upsert && e.Op != Delete:
		return Event{}, fmt.Errorf("decode event: invalid op %d", m.Op)
	case e.Version == 0:
		return Event{}, fmt.Errorf("decode event: zero version")
	}
	return e, nil
}

// checkLikeProto fails unless decode and the proto decoder give the same
// value and the same error, and, when the bytes are well-formed, the
// value does not alias them.
func checkLikeProto[T any](t *testing.T, data []byte, decode, viaProto func([]byte) (T, error)) {
	t.Helper()
	want, wantErr := viaProto(data)
	orig := bytes.Clone(data)
	got, gotErr := decode(data)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%x: error %v, proto's %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%x:\n got %+v\nwant %+v", data, got, want)
	}
	clear(data)
	if again, _ := viaProto(orig); !reflect.DeepEqual(got, again) {
		t.Fatalf("%x: the decoded value aliases the input", orig)
	}
}

func FuzzUnmarshalIntentLikeProto(f *testing.F) {
	for _, in := range []Intent{goldenIntent, {Table: "t", Key: []byte("k"), Op: Abort, Version: 10, Trace: WidestTrace, PublishedFloor: 9}} {
		b, _ := in.Marshal()
		f.Add(b)
		f.Add(append(b, b...)) // every field twice: the last wins
		f.Add(append(b, 0x50)) // field 10: unknown
	}
	f.Add([]byte{0x0a, 0x01, 0xff, 0x12, 0x01, 'k', 0x18, 0x01, 0x20, 0x01}) // invalid UTF-8 table
	f.Add([]byte{0x18, 0x81, 0x02, 0x20, 0x01, 0x12, 0x01, 'k'})             // op 257: Upsert once truncated
	f.Add([]byte{0x1a, 0x00})                                                // op as bytes
	f.Fuzz(func(t *testing.T, data []byte) { checkLikeProto(t, data, UnmarshalIntent, protoIntent) })
}

func FuzzUnmarshalEventLikeProto(f *testing.F) {
	traced := goldenEvent
	traced.Trace, traced.SchemaID = WidestTrace, 3
	for _, e := range []Event{goldenEvent, traced} {
		b, _ := e.Marshal()
		f.Add(b)
		f.Add(append(b, b...))
		f.Add(append(b, 0x60)) // field 12: unknown
	}
	f.Add([]byte{0x4a, 0x01, 0xff, 0x18, 0x01, 0x20, 0x01}) // invalid UTF-8 event id
	f.Add([]byte{0x18, 0x02, 0x20, 0x01, 0x2a, 0x00})       // a delete with an empty value
	f.Fuzz(func(t *testing.T, data []byte) { checkLikeProto(t, data, UnmarshalEvent, protoEvent) })
}

// TestDecodeByHand: the encodings wail writes take the hand-written path
// (the fuzz targets above pass whichever path is taken).
func TestDecodeByHand(t *testing.T) {
	for _, in := range []Intent{goldenIntent, {Table: "t", Key: []byte("k"), Op: Abort, Version: 10, Trace: WidestTrace, PublishedFloor: 9}} {
		b, _ := in.Marshal()
		if _, _, ok := decodeIntent(b); !ok {
			t.Errorf("%+v: decoded by proto", in)
		}
	}
	traced := goldenEvent
	traced.Trace, traced.SchemaID = WidestTrace, 3
	for _, e := range []Event{goldenEvent, traced} {
		b, _ := e.Marshal()
		if _, _, ok := decodeEvent(b); !ok {
			t.Errorf("%+v: decoded by proto", e)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	in, _ := goldenIntent.Marshal()
	ev, _ := goldenEvent.Marshal()
	for _, c := range []struct {
		name   string
		decode func() error
	}{
		{"intent/wail", func() error { _, err := UnmarshalIntent(in); return err }},
		{"intent/proto", func() error { _, err := protoIntent(in); return err }},
		{"event/wail", func() error { _, err := UnmarshalEvent(ev); return err }},
		{"event/proto", func() error { _, err := protoEvent(ev); return err }},
		{"event-marshal/wail", func() error { _, err := goldenEvent.Marshal(); return err }},
		{"event-marshal/proto", func() error { _, err := proto.Marshal(goldenEvent.Proto()); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// checkScanEvent fails unless ScanEvent accepts data only when data is
// what the decoded path sends for it (proto.Marshal of the decoded
// event's Proto), with the event's key and version.
func checkScanEvent(t *testing.T, data []byte) bool {
	t.Helper()
	key, version, ok := ScanEvent(data)
	if !ok {
		return false
	}
	e, err := UnmarshalEvent(data)
	if err != nil {
		t.Fatalf("%x: ScanEvent accepts what UnmarshalEvent refuses: %v", data, err)
	}
	if sent, err := proto.Marshal(e.Proto()); err != nil || !bytes.Equal(sent, data) {
		t.Fatalf("%x: ScanEvent accepts it, but the decoded event encodes as %x (%v)", data, sent, err)
	}
	if !bytes.Equal(key, e.Key) || version != e.Version {
		t.Fatalf("%x: ScanEvent gives key %q version %d, the event has %q %d", data, key, version, e.Key, e.Version)
	}
	return true
}

func FuzzScanEvent(f *testing.F) {
	traced := goldenEvent
	traced.Trace, traced.SchemaID, traced.Op, traced.Value = WidestTrace, 3, Delete, nil
	for _, e := range []Event{goldenEvent, traced} {
		b, _ := e.Marshal()
		f.Add(b)
		f.Add(append(b, b...))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanEvent(t, data) })
}

// TestScanEvent: what the resolver publishes passes as it is; what
// decodes to another encoding does not.
func TestScanEvent(t *testing.T) {
	traced := goldenEvent
	traced.Trace, traced.SchemaID, traced.Op, traced.Value = WidestTrace, 3, Delete, nil
	for _, e := range []Event{goldenEvent, traced, {Table: "t", Op: Upsert, Version: 1}, {Op: Delete, Version: MaxVersion, Key: make([]byte, 200)}} {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !checkScanEvent(t, b) {
			t.Errorf("%+v: its encoding is refused", e)
		}
	}
	golden, _ := goldenEvent.Marshal()
	for name, b := range map[string][]byte{
		"unknown field":   append(bytes.Clone(golden), 0x60, 0x01),
		"twice":           append(bytes.Clone(golden), golden...),
		"zero version":    {0x18, 0x01, 0x20, 0x00, 0x4a, 0x03, '/', '/', '0'},
		"long varint":     {0x18, 0x81, 0x00, 0x20, 0x01, 0x4a, 0x05, '/', '/', '1'},
		"op 3":            {0x18, 0x03, 0x20, 0x01, 0x4a, 0x03, '/', '/', '1'},
		"other event id":  {0x18, 0x01, 0x20, 0x01, 0x4a, 0x03, '/', '/', '2'},
		"fields reversed": {0x20, 0x01, 0x18, 0x01, 0x4a, 0x03, '/', '/', '1'},
		"empty":           {},
	} {
		if checkScanEvent(t, b) {
			t.Errorf("%s: %x passes", name, b)
		}
	}
	if !checkScanEvent(t, []byte{0x18, 0x01, 0x20, 0x01, 0x4a, 0x03, '/', '/', '1'}) {
		t.Error("the smallest event is refused")
	}
}
