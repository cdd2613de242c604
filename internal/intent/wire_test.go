package intent

import (
	"bytes"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// checkMarshalLikeProto fails unless in.Marshal and proto.Marshal of
// in.Proto() give the same bytes, or both fail (proto.Marshal returns what
// it encoded with its error: those bytes are not compared).
func checkMarshalLikeProto(t *testing.T, in Intent) {
	t.Helper()
	got, gotErr := in.Marshal()
	want, wantErr := proto.Marshal(in.Proto())
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%+v: Marshal error %v, proto.Marshal error %v", in, gotErr, wantErr)
	}
	if gotErr == nil && !bytes.Equal(got, want) {
		t.Fatalf("%+v:\nMarshal       %x\nproto.Marshal %x", in, got, want)
	}
	if gotErr == nil && cap(got) != len(got) {
		t.Errorf("%+v: sized %d for %d bytes", in, cap(got), len(got))
	}
	checkMarshalKeyed(t, in, got, gotErr)
}

// checkMarshalKeyed fails unless in.MarshalKeyed gives marshaled and
// err (Marshal's answer) and a key equal to in.Key (nil-ness too) that
// lies inside its encoding, not in in.Key's memory.
func checkMarshalKeyed(t *testing.T, in Intent, marshaled []byte, err error) {
	t.Helper()
	in.Key = bytes.Clone(in.Key) // cleared below: not the caller's (nil stays nil)
	b, key, kerr := in.MarshalKeyed()
	if (kerr == nil) != (err == nil) || !bytes.Equal(b, marshaled) {
		t.Fatalf("%+v: MarshalKeyed %x, %v; Marshal %x, %v", in, b, kerr, marshaled, err)
	}
	if kerr != nil {
		return
	}
	if !bytes.Equal(key, in.Key) || (key == nil) != (in.Key == nil) {
		t.Fatalf("%+v: MarshalKeyed's key %q (nil %t), want %q (nil %t)", in, key, key == nil, in.Key, in.Key == nil)
	}
	if len(key) == 0 {
		if cap(key) != 0 {
			t.Fatalf("%+v: an empty key with capacity %d", in, cap(key))
		}
		return
	}
	if cap(key) != len(key) {
		t.Errorf("%+v: key capacity %d past its %d bytes: an append would write into the encoding", in, cap(key), len(key))
	}
	orig := bytes.Clone(in.Key)
	clear(in.Key) // the caller's memory (a request's) changes: the key must not
	if !bytes.Equal(key, orig) {
		t.Fatalf("%+v: the key aliases the caller's memory", in)
	}
	clear(b) // and it is the encoding's copy
	if !bytes.Equal(key, make([]byte, len(key))) {
		t.Fatalf("%+v: the key is not inside the encoding", in)
	}
}

func TestMarshalLikeProto(t *testing.T) {
	withFloor := goldenIntent
	withFloor.PublishedFloor = 1 << 62
	traced := goldenIntent
	traced.Trace = WidestTrace
	cases := []struct {
		name string
		in   Intent
	}{
		{"golden", goldenIntent},
		{"reconcile floor", withFloor},
		{"traced", traced},
		{"zero", Intent{}},
		{"zero time", Intent{Table: "t", Key: []byte("k"), Version: 1}},
		{"before 1970", Intent{Table: "t", Key: []byte("k"), Version: 1, CreatedAt: time.Unix(-5, 0)}},
		{"widest numbers", Intent{Table: "t", Key: []byte("k"), Op: math.MaxUint8, Version: math.MaxUint64, ProxyID: math.MaxUint32,
			CreatedAt: time.UnixMicro(math.MaxInt64), PublishedFloor: math.MaxUint64}},
		{"long key", Intent{Table: "t", Key: bytes.Repeat([]byte("k"), 300), Version: 7}},
		{"empty key", Intent{Table: "t", Key: []byte{}, Version: 7}},
		{"invalid UTF-8 table", Intent{Table: "\xff", Key: []byte("k"), Version: 1}},
		{"invalid UTF-8 id", Intent{Table: "t", ID: "\xc0", Version: 1}},
		{"invalid UTF-8 trace", Intent{Table: "t", Trace: "\xed\xa0\x80", Version: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkMarshalLikeProto(t, tc.in) })
	}
}

func FuzzMarshalLikeProto(f *testing.F) {
	f.Add("orders", []byte("k1"), uint8(1), uint64(1)<<40, "3-99", uint32(3), int64(1_700_000_000_000_000), uint64(0), "")
	f.Add("", []byte{}, uint8(0), uint64(0), "", uint32(0), int64(-1), uint64(math.MaxUint64), "\xff")
	f.Fuzz(func(t *testing.T, table string, key []byte, op uint8, version uint64, id string, proxy uint32, us int64, floor uint64, trace string) {
		checkMarshalLikeProto(t, Intent{Table: table, Key: key, Op: Op(op), Version: version, ID: id, ProxyID: proxy,
			CreatedAt: time.UnixMicro(us), PublishedFloor: floor, Trace: trace})
	})
}

func BenchmarkIntentMarshal(b *testing.B) {
	in := goldenIntent
	b.Run("wail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(in.Proto()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
