package embedded

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestResumeBoundaries: resumeAt after a bad last batch whose value
// holds a whole batch with the bad batch's base (a client's bytes), at the
// boundaries badBatch draws: the largest batch a length field may
// declare, a declared end exactly at the file end, a length field made
// smaller or larger than the batch. The file starts with a byte and a
// valid batch at position 1 with that base too: resumeAt answers only
// positions at or after the bad batch, never one before it.
func TestResumeBoundaries(t *testing.T) {
	ts := time.UnixMicro(1000)
	const next = 1
	inner := encodeBatch(nil, next, 1000, []intentlog.Record{{Key: []byte("forged"), Timestamp: ts}})
	prefix := append([]byte{0}, encodeBatch(nil, next, 1000, []intentlog.Record{{Key: []byte("a"), Timestamp: ts}})...)
	pos := int64(len(prefix))
	// holder is the bad batch before damage: one record whose value holds
	// inner, with a header whose value ("x") is the batch's last byte.
	holder := func(base int64) []byte {
		return encodeBatch(nil, base, 1000, []intentlog.Record{{Key: []byte("k"),
			Value: append(append([]byte("v"), inner...), "tail"...), Timestamp: ts,
			Headers: []intentlog.Header{{Key: "h", Value: []byte("x")}}}})
	}
	h := holder(next)
	innerAt := pos + int64(bytes.Index(h, inner))
	innerEnd := innerAt - pos + int64(len(inner))
	setSize := func(b []byte, size int64) []byte {
		binary.BigEndian.PutUint32(b[1:], uint32(size-5))
		return b
	}
	cases := []struct {
		name string
		bad  func() []byte
		want int64 // where resumeAt finds a batch; -1: none
	}{
		{"header cut short", func() []byte { return bytes.Clone(h[:10]) }, -1},
		{"torn, declaring the largest batch", func() []byte {
			return setSize(bytes.Clone(h[:innerEnd+3]), maxFrameBytes)
		}, -1},
		{"torn, declaring more than any batch", func() []byte {
			return setSize(bytes.Clone(h[:innerEnd+3]), maxFrameBytes+1)
		}, innerAt},
		{"torn, base not the writer's", func() []byte { return bytes.Clone(holder(next + 5)[:innerEnd+3]) }, innerAt},
		{"no magic, declared end at the file end", func() []byte {
			b := bytes.Clone(h)
			b[0] = 0
			return b
		}, -1},
		{"no magic, declared end past the file end", func() []byte {
			b := setSize(bytes.Clone(h), int64(len(h))+10)
			b[0] = 0
			return b
		}, innerAt},
		{"length smaller, the records run on to the file end", func() []byte {
			return setSize(bytes.Clone(h), batchHeaderLen+5) // inside the value's length
		}, -1},
		{"length larger than the file, a record byte damaged", func() []byte {
			b := setSize(bytes.Clone(h), int64(len(h))+100)
			b[batchHeaderLen] = 1
			return b
		}, innerAt},
		{"a header value's length runs past the declared end, at the file end", func() []byte {
			b := bytes.Clone(h)
			b[len(b)-2] = 4 // the varint 2: "x" plus a byte past the end
			return b
		}, innerAt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := append(bytes.Clone(prefix), tc.bad()...)
			q, hdr, ok, err := resumeAt(bytes.NewReader(data), pos, int64(len(data)), next, next)
			if err != nil || ok != (tc.want >= 0) || ok && (q != tc.want || hdr.base != next) {
				t.Fatalf("resumeAt = %d (base %d), %v, %v; want %d", q, hdr.base, ok, err, tc.want)
			}
		})
	}
}
