package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"connectrpc.com/connect"
)

// chunked returns at most n bytes a read (a server's trickle).
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// FuzzBoundedBody: the client reads a server's answer through boundedBody,
// whatever the server sends, read in any pieces: an enveloped body passes
// every byte through up to the prefix of the first message declared over
// the bound, then fails resource_exhausted; a unary one passes at most
// limit+1 bytes, and fails if it brought more than limit. A body within
// the bound passes whole, then io.EOF.
func FuzzBoundedBody(f *testing.F) {
	env := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(env([]byte("hello"), nil, []byte("world")), uint16(8), uint8(3), true)
	f.Add(env([]byte("hello"), bytes.Repeat([]byte("x"), 100)), uint16(8), uint8(1), true)
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, uint16(0), uint8(200), true)
	f.Add(env(bytes.Repeat([]byte("x"), 8), nil), uint16(8), uint8(4), true) // exactly the bound
	f.Add([]byte("a unary answer"), uint16(5), uint8(2), false)
	f.Add([]byte("short"), uint16(5), uint8(7), false)
	f.Fuzz(func(t *testing.T, data []byte, limit16 uint16, chunk uint8, enveloped bool) {
		limit := int64(limit16)
		want, over := data, false
		if enveloped {
			for i := 0; i+5 <= len(data); {
				n := int64(binary.BigEndian.Uint32(data[i+1:]))
				if n > limit {
					want, over = data[:i+5], true
					break
				}
				i += 5 + int(min(n, int64(len(data)-i-5)))
			}
		} else if int64(len(data)) > limit {
			want, over = data[:limit+1], true
		}
		b := &boundedBody{body: io.NopCloser(&chunked{bytes.NewReader(data), int(chunk)%64 + 1}), limit: limit, enveloped: enveloped}
		var got []byte
		buf := make([]byte, int(chunk)%97+1)
		var err error
		for range 4*len(data) + 8 {
			var n int
			n, err = b.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("passed %d bytes %q, want %d %q", len(got), got, len(want), want)
		}
		var ce *connect.Error
		switch {
		case over && (!errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted):
			t.Fatalf("over the bound: %v, want resource_exhausted", err)
		case !over && err != io.EOF:
			t.Fatalf("within the bound: %v, want io.EOF", err)
		}
	})
}
