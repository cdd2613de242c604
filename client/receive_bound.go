package client

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// receiveBound is the transport's side of Options.MaxReceiveBytes.
// connect (connect.WithReadMaxBytes) refuses a message over the bound,
// but reads its bytes first and throws them away (connect-go v1.21.1,
// envelope.go, envelopeReader.Read: io.CopyN(io.Discard, r.reader, size),
// up to the 4 GiB a length prefix may declare; a unary answer is read to
// its end the same way, protocol_connect.go, connectUnaryUnmarshaler):
// a server that trickles them holds the call for as long as it likes. So
// the bodies of Connect and gRPC answers are read through boundedBody,
// which fails the read and closes the body, instead, as soon as a message
// declares more than the bound (a stream's length prefix) or brings more
// (a unary answer).
type receiveBound struct {
	limit int64
	next  http.RoundTripper
}

func (b receiveBound) unwrap() http.RoundTripper { return b.next }

// CloseIdleConnections passes http.Client.CloseIdleConnections on.
func (b receiveBound) CloseIdleConnections() { closeIdle(b.next) }

func (b receiveBound) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(r)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web-text"):
		// base64: no length prefix to read; connect bounds what it decodes
	case strings.HasPrefix(ct, "application/connect+"), strings.HasPrefix(ct, "application/grpc"):
		resp.Body = &boundedBody{body: resp.Body, limit: b.limit, enveloped: true}
	case r.Header.Get("Connect-Protocol-Version") != "" || r.URL.Query().Get("connect") != "":
		resp.Body = &boundedBody{body: resp.Body, limit: b.limit}
	}
	return resp, nil
}

// boundedBody reads a Connect or gRPC answer's body: enveloped (a stream,
// a gRPC call), each message's 5-byte prefix is read on its own and one
// that declares more than limit ends the body; otherwise (a Connect unary
// answer) the body ends once it brought more than limit bytes (connect
// reads limit+1 to tell).
type boundedBody struct {
	body      io.ReadCloser
	limit     int64
	enveloped bool
	head      [5]byte // the prefix being read
	inHead    int     // its bytes read so far
	left      int64   // the message's bytes still to read
	read      int64   // unary: bytes read
	err       error   // the bound was passed: every read fails
}

// errTooLarge is the error of a read past the bound.
type errTooLarge struct {
	size  int64 // declared (a stream's message), or 0: more than limit came
	limit int64
}

func (e *errTooLarge) Error() string {
	if e.size > 0 {
		return fmt.Sprintf("wail: the server sent a message of %d bytes, over Options.MaxReceiveBytes (%d): the answer was closed without reading it", e.size, e.limit)
	}
	return fmt.Sprintf("wail: the server sent an answer over Options.MaxReceiveBytes (%d): it was closed without reading the rest", e.limit)
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if !b.enveloped {
		if b.read > b.limit {
			return 0, b.fail(0)
		}
		if b.limit < math.MaxInt64 { // limit+1 would overflow
			p = p[:min(int64(len(p)), b.limit+1-b.read)]
		}
		n, err := b.body.Read(p)
		b.read += int64(n)
		return n, err
	}
	if b.left > 0 { // within a message
		n, err := b.body.Read(p[:min(int64(len(p)), b.left)])
		b.left -= int64(n)
		return n, err
	}
	// A prefix: read alone, so that the message it declares is known
	// before any of its bytes are read.
	n, err := b.body.Read(p[:min(len(p), len(b.head)-b.inHead)])
	copy(b.head[b.inHead:], p[:n])
	if b.inHead += n; b.inHead == len(b.head) {
		b.inHead = 0
		b.left = int64(binary.BigEndian.Uint32(b.head[1:]))
		if b.left > b.limit {
			// The prefix goes to connect, which then sees the message over
			// its bound and reads for its bytes: that read fails.
			_ = b.fail(b.left)
			b.left = 0
		}
	}
	return n, err
}

// fail closes the body (a stream is reset, an HTTP/1.1 connection
// closed, not drained) and fails every read from now, resource_exhausted
// (connect passes a *connect.Error from a read on as it is; any other
// error would fail the call unknown, when a connect.WithReadMaxBytes
// above the bound let connect read the message).
func (b *boundedBody) fail(size int64) error {
	b.err = connect.NewError(connect.CodeResourceExhausted, &errTooLarge{size: size, limit: b.limit})
	_ = b.body.Close()
	return b.err
}

func (b *boundedBody) Close() error { return b.body.Close() }
