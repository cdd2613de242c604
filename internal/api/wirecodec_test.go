package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// checkLikeProto decodes b with writeCodec and with proto.Unmarshal into a
// fresh msg each and fails unless both fail or both give equal messages,
// with nil and empty bytes fields alike and unknown fields kept.
func checkLikeProto(t *testing.T, b []byte, fresh func() proto.Message) {
	t.Helper()
	got, want := fresh(), fresh()
	gotErr := writeCodec{}.Unmarshal(b, got)
	wantErr := proto.Unmarshal(b, want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%x: writeCodec error %v, proto.Unmarshal error %v", b, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !proto.Equal(got, want) {
		t.Fatalf("%x: writeCodec decoded %v, proto.Unmarshal %v", b, got, want)
	}
	g, _ := proto.Marshal(got)
	w, _ := proto.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("%x: re-encoded differently: %x vs %x", b, g, w)
	}
	if gm, ok := got.(*wailv1.WriteRequest); ok {
		wm := want.(*wailv1.WriteRequest)
		for i := range gm.Mutations {
			if (gm.Mutations[i].Key == nil) != (wm.Mutations[i].Key == nil) || (gm.Mutations[i].Value == nil) != (wm.Mutations[i].Value == nil) {
				t.Fatalf("%x: mutation %d: nil-ness of key/value differs from proto.Unmarshal", b, i)
			}
		}
	}
}

func writeReq() proto.Message  { return &wailv1.WriteRequest{} }
func streamReq() proto.Message { return &wailv1.WriteStreamRequest{} }

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteCodecLikeProto(t *testing.T) {
	muts := []*wailv1.Mutation{
		{Table: "orders", Key: []byte("k1"), Op: wailv1.Op_OP_UPSERT, Value: []byte("v1")},
		{Table: "orders", Key: []byte("k2"), Op: wailv1.Op_OP_DELETE},
		{Table: "users", Key: []byte("k3"), ValueJson: `{"a":1}`},
		{},
		{Table: "orders", Key: []byte{}, Value: []byte{}, Op: wailv1.Op(-7)},
	}
	valid := mustMarshal(t, &wailv1.WriteRequest{Mutations: muts})
	stream := mustMarshal(t, &wailv1.WriteStreamRequest{Seq: 1 << 40, Mutations: muts})
	mut := mustMarshal(t, muts[0])
	withUnknown := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), mut...), 9, protowire.BytesType), []byte("x"))
	badUTF8 := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff")
	keyTwice := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), mut...), 2, protowire.BytesType), []byte("k9"))
	opAsBytes := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte("x"))
	msg := func(field protowire.Number, parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = protowire.AppendBytes(protowire.AppendTag(b, field, protowire.BytesType), p)
		}
		return b
	}
	cases := []struct {
		name  string
		b     []byte
		fresh func() proto.Message
	}{
		{"write request", valid, writeReq},
		{"empty write request", nil, writeReq},
		{"stream request", stream, streamReq},
		{"stream request, seq only", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 42), streamReq},
		{"stream request, seq twice: the last wins", protowire.AppendVarint(protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(stream, 1, protowire.VarintType), 7), 1, protowire.VarintType), 8), streamReq},
		{"unknown field in a mutation (kept by proto)", msg(1, withUnknown), writeReq},
		{"unknown top-level field", append(append([]byte(nil), valid...), msg(7, []byte("z"))...), writeReq},
		{"invalid UTF-8 table", msg(1, badUTF8), writeReq},
		{"invalid UTF-8 value_json", msg(1, protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "\xc0")), writeReq},
		{"key twice: the last wins", msg(1, keyTwice), writeReq},
		{"op with the wrong wire type", msg(1, opAsBytes), writeReq},
		{"mutations as a varint", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), writeReq},
		{"truncated", valid[:len(valid)-1], writeReq},
		{"truncated mutation", msg(1, mut[:len(mut)-1]), writeReq},
		{"field number 0", []byte{0x02, 0x00}, writeReq},
		{"write request read as a stream request", valid, streamReq},
		{"stream request read as a write request", stream, writeReq},
		// What the generated decoder accepts or refuses byte for byte.
		{"tag in a non-minimal varint", append([]byte{0x8a, 0x00, byte(len(mut))}, mut...), writeReq},
		{"tag of field 2^29 (too large)", []byte{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00}, writeReq},
		{"group in a mutation (unknown, kept by proto)", msg(1, []byte{0x33, 0x34}), writeReq},
		{"op as a group", msg(1, []byte{0x1b, 0x1c}), writeReq},
		{"unterminated group", msg(1, []byte{0x33}), writeReq},
		{"op as fixed64", msg(1, []byte{0x19, 1, 2, 3, 4, 5, 6, 7, 8}), writeReq},
		{"op overflowing 64 bits", msg(1, []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), writeReq},
		{"op of 10 bytes, the largest", msg(1, []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), writeReq},
		{"op above int32 (truncated as proto does)", msg(1, protowire.AppendVarint([]byte{0x18}, 1<<35+3)), writeReq},
		{"truncated op varint", msg(1, []byte{0x18, 0x80}), writeReq},
		{"key length past the end", msg(1, []byte{0x12, 0x7f, 'k'}), writeReq},
		{"mutation length of 2^63", append([]byte{0x0a}, protowire.AppendVarint(nil, 1<<63)...), writeReq},
		{"mutation length overflowing 64 bits", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, writeReq},
		{"seq of 10 bytes", append([]byte{0x08}, protowire.AppendVarint(nil, 1<<63)...), streamReq},
		{"seq as fixed64", []byte{0x09, 1, 2, 3, 4, 5, 6, 7, 8}, streamReq},
		{"seq packed", msg(1, []byte{0x01}), streamReq},
		{"mutations as field 1 of a stream request", msg(1, mut), streamReq},
		{"empty mutations, repeated", msg(1, nil, nil, nil), writeReq},
		{"table twice in a mutation, invalid UTF-8 second", msg(1, append(append([]byte(nil), mut...), badUTF8...)), writeReq},
		{"the same table in two mutations, then invalid UTF-8", msg(1, mut, mut, badUTF8), writeReq},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLikeProto(t, tc.b, tc.fresh) })
	}
}

// TestWriteCodecCopies: the decoded keys and values do not alias the
// buffer connect hands in (it reuses it), and an append to a key does not
// overwrite the next field.
func TestWriteCodecCopies(t *testing.T) {
	b := mustMarshal(t, &wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("key"), Value: []byte("value")},
		{Table: "t", Key: []byte("k2"), Value: []byte("v2")},
	}})
	var m wailv1.WriteRequest
	if err := (writeCodec{}).Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if got := m.Mutations[0]; string(got.Key) != "key" || string(got.Value) != "value" || got.Table != "t" {
		t.Fatalf("after the input was cleared: %v", got)
	}
	_ = append(m.Mutations[0].Key, 'X')
	if string(m.Mutations[0].Value) != "value" || string(m.Mutations[1].Key) != "k2" {
		t.Fatalf("an append to a key wrote into the value: %v", m.Mutations)
	}
}

// TestWriteCodecOtherMessages: messages other than the two write requests
// go through proto.
func TestWriteCodecOtherMessages(t *testing.T) {
	want := &wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}
	var got wailv1.PutRequest
	if err := (writeCodec{}).Unmarshal(mustMarshal(t, want), &got); err != nil || !proto.Equal(&got, want) {
		t.Fatalf("got %v, %v; want %v", &got, err, want)
	}
	if err := (writeCodec{}).Unmarshal(nil, struct{}{}); err == nil {
		t.Fatal("decoded into a non-protobuf value")
	}
	if _, err := (writeCodec{}).Marshal(struct{}{}); err == nil {
		t.Fatal("encoded a non-protobuf value")
	}
}

// FuzzWriteCodec: writeCodec decodes any input exactly as proto.Unmarshal
// does (same success, equal messages, same re-encoding).
func FuzzWriteCodec(f *testing.F) {
	f.Add(mustMarshal(f, &wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "orders", Key: []byte("k1"), Value: []byte("v1")}, {Table: "orders", Key: []byte("k2"), Op: wailv1.Op_OP_DELETE}}}))
	f.Add(mustMarshal(f, &wailv1.WriteStreamRequest{Seq: 3, Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), ValueJson: "{}"}}}))
	f.Add([]byte{0x0a, 0x03, 0x0a, 0x01, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkLikeProto(t, b, writeReq)
		checkLikeProto(t, b, streamReq)
		checkCapped(t, b, writeReq)
		checkCapped(t, b, streamReq)
	})
}

// checkCapped: writeCodec with a cap of 2 mutations refuses only what
// proto.Unmarshal fails on or decodes to more than 2, and decodes the
// rest as proto.Unmarshal does.
func checkCapped(t *testing.T, b []byte, fresh func() proto.Message) {
	t.Helper()
	const max = 2
	got, want := fresh(), fresh()
	gotErr := writeCodec{maxMutations: max}.Unmarshal(b, got)
	wantErr := proto.Unmarshal(b, want)
	type batch interface{ GetMutations() []*wailv1.Mutation }
	over := wantErr == nil && len(want.(batch).GetMutations()) > max
	switch capped := gotErr != nil && strings.Contains(gotErr.Error(), "limits.max_batch_mutations"); {
	case over && !capped:
		t.Fatalf("%x: %d mutations over the cap of %d, decoded: %v", b, len(want.(batch).GetMutations()), max, gotErr)
	case capped && wantErr == nil && !over:
		t.Fatalf("%x: refused as over the cap, proto.Unmarshal gave %d mutations", b, len(want.(batch).GetMutations()))
	case !capped && (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%x: writeCodec error %v, proto.Unmarshal error %v", b, gotErr, wantErr)
	case gotErr == nil && !proto.Equal(got, want):
		t.Fatalf("%x: writeCodec decoded %v, proto.Unmarshal %v", b, got, want)
	}
}

// BenchmarkWriteCodec decodes a WriteRequest of 1000 mutations of 16-byte
// keys and 100-byte values (the bench's shape), by hand and by proto.
func BenchmarkWriteCodec(b *testing.B) {
	req := &wailv1.WriteRequest{}
	for i := range 1000 {
		req.Mutations = append(req.Mutations, &wailv1.Mutation{Table: "bench_0", Key: fmt.Appendf(nil, "key-%011d", i), Op: wailv1.Op_OP_UPSERT, Value: make([]byte, 100)})
	}
	data := mustMarshal(b, req)
	for _, tc := range []struct {
		name string
		dec  func([]byte, proto.Message) error
	}{
		{"codec=wail", func(b []byte, m proto.Message) error { return writeCodec{}.Unmarshal(b, m) }},
		{"codec=proto", proto.Unmarshal},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m wailv1.WriteRequest
				if err := tc.dec(data, &m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "mutations/s")
		})
	}
}

// TestWriteCodecMaxMutations: a request of more mutations than the cap
// is refused before any is decoded, by hand or by proto.Unmarshal (an
// unknown field, a malformed tail after the mutations); at the cap, or
// without one, it decodes.
func TestWriteCodecMaxMutations(t *testing.T) {
	muts := func(n int) []*wailv1.Mutation {
		out := make([]*wailv1.Mutation, n)
		for i := range out {
			out[i] = &wailv1.Mutation{Table: "t", Key: []byte{byte('a' + i)}}
		}
		return out
	}
	unknown := protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), []byte("z"))
	overWrite := mustMarshal(t, &wailv1.WriteRequest{Mutations: muts(4)})
	empties := bytes.Repeat([]byte{0x0a, 0x00}, 4) // four empty mutations, the cheapest on the wire
	cases := []struct {
		name  string
		max   int
		b     []byte
		fresh func() proto.Message
		want  int // mutations decoded, or -1: refused
	}{
		{"at the cap", 3, mustMarshal(t, &wailv1.WriteRequest{Mutations: muts(3)}), writeReq, 3},
		{"over the cap", 3, overWrite, writeReq, -1},
		{"empty mutations over the cap", 3, empties, writeReq, -1},
		{"over the cap, with an unknown field (proto's path)", 3, append(append([]byte(nil), overWrite...), unknown...), writeReq, -1},
		{"over the cap, then malformed", 3, append(append([]byte(nil), overWrite...), 0x0a, 0x7f), writeReq, -1},
		{"stream request over the cap", 3, mustMarshal(t, &wailv1.WriteStreamRequest{Seq: 9, Mutations: muts(4)}), streamReq, -1},
		{"stream request at the cap", 4, mustMarshal(t, &wailv1.WriteStreamRequest{Seq: 9, Mutations: muts(4)}), streamReq, 4},
		{"no cap", 0, empties, writeReq, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.fresh()
			err := writeCodec{maxMutations: tc.max}.Unmarshal(tc.b, m)
			if tc.want < 0 {
				want := fmt.Sprintf("mutations, the limit is %d (limits.max_batch_mutations)", tc.max)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one ending %q", err, want)
				}
				return
			}
			type batch interface{ GetMutations() []*wailv1.Mutation }
			if err != nil || len(m.(batch).GetMutations()) != tc.want {
				t.Fatalf("decoded %v, %v; want %d mutations", m, err, tc.want)
			}
		})
	}
}

// TestMountCapsBinaryBatches: through Mount, a binary Write over
// Services.MaxBatch is refused with InvalidArgument naming the limit, and
// nothing is written.
func TestMountCapsBinaryBatches(t *testing.T) {
	t.Parallel()
	w := &world{}
	mux := NewMux()
	svc := Unimplemented()
	svc.Producer, svc.MaxBatch = NewProducerService(newProxy(t, w)), 2
	Mount(mux, svc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, srv.URL) // binary protobuf
	batch := []*wailv1.Mutation{{Table: "tx", Key: []byte("a")}, {Table: "tx", Key: []byte("b")}, {Table: "tx", Key: []byte("c")}}
	_, err := pc.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: batch}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "batch has 3 mutations, the limit is 2 (limits.max_batch_mutations)") {
		t.Fatalf("a batch over the cap: %v", err)
	}
	w.Mu.Lock()
	calls := len(w.Calls)
	w.Mu.Unlock()
	if calls != 0 {
		t.Fatalf("a refused batch reached the log or store: %d calls", calls)
	}
	resp, err := pc.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: batch[:2]}))
	if err != nil || len(resp.Msg.Results) != 2 || !resp.Msg.Results[1].Stored {
		t.Fatalf("a batch at the cap: %v, %v", resp, err)
	}
}
