package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// roundTripFunc is an http.RoundTripper of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestReceiveBoundWraps: which answers the bound reads: a Connect stream's
// and a gRPC call's message by message, a Connect unary answer (POST with
// Connect-Protocol-Version, or GET with ?connect=) by its bytes; a
// gRPC-Web text answer (base64, no prefix to read) and anything else as
// they come. A failed round trip, or an answer without a body, is passed
// on as it is.
func TestReceiveBoundWraps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ct        string
		header    string // Connect-Protocol-Version of the request
		url       string
		wrapped   bool
		enveloped bool
	}{
		{"connect stream", "application/connect+proto", "", "/s", true, true},
		{"grpc", "application/grpc", "", "/s", true, true},
		{"grpc+proto", "application/grpc+proto", "", "/s", true, true},
		{"grpc-web text", "application/grpc-web-text+proto", "", "/s", false, false},
		{"connect unary", "application/proto", "1", "/s", true, false},
		{"connect unary GET", "application/proto", "", "/s?connect=v1&encoding=proto", true, false},
		{"anything else", "text/html", "", "/s", false, false},
	} {
		body := io.NopCloser(strings.NewReader("x"))
		rb := receiveBound{limit: 10, next: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{Header: http.Header{"Content-Type": {tc.ct}}, Body: body}, nil
		})}
		r := httptest.NewRequest(http.MethodPost, "http://wail"+tc.url, nil)
		if tc.header != "" {
			r.Header.Set("Connect-Protocol-Version", tc.header)
		}
		resp, err := rb.RoundTrip(r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, ok := resp.Body.(*boundedBody)
		switch {
		case ok != tc.wrapped:
			t.Errorf("%s: body bounded %v, want %v", tc.name, ok, tc.wrapped)
		case ok && (b.enveloped != tc.enveloped || b.limit != 10 || b.body != body):
			t.Errorf("%s: enveloped %v limit %d, want %v 10 over the transport's body", tc.name, b.enveloped, b.limit, tc.enveloped)
		case !ok && resp.Body != body:
			t.Errorf("%s: the body was replaced", tc.name)
		}
	}
	failed := errors.New("dial failed")
	rb := receiveBound{limit: 10, next: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, failed })}
	if resp, err := rb.RoundTrip(httptest.NewRequest(http.MethodPost, "http://wail/s", nil)); resp != nil || err != failed {
		t.Errorf("a failed round trip: %v, %v", resp, err)
	}
	rb.next = roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{Header: http.Header{"Content-Type": {"application/grpc"}}}, nil
	})
	if resp, err := rb.RoundTrip(httptest.NewRequest(http.MethodPost, "http://wail/s", nil)); err != nil || resp.Body != nil {
		t.Errorf("an answer without a body: %v, %v", resp.Body, err)
	}
}

// closeCounter counts its Close calls.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// TestBoundedBodyCloses: a read past the bound closes the body at once
// (a stream reset, an HTTP/1.1 connection closed, not drained) and fails
// resource_exhausted, saying what came; Close closes it too.
func TestBoundedBodyCloses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		data      []byte
		enveloped bool
		say       string
	}{
		{"a message declared over the bound", binary.BigEndian.AppendUint32([]byte{0}, 11), true, "a message of 11 bytes"},
		{"a unary answer over the bound", bytes.Repeat([]byte("x"), 11), false, "an answer over Options.MaxReceiveBytes (10)"},
	} {
		c := &closeCounter{Reader: bytes.NewReader(tc.data)}
		b := &boundedBody{body: c, limit: 10, enveloped: tc.enveloped}
		_, err := io.ReadAll(b)
		if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%s: %v, want resource_exhausted saying %q", tc.name, err, tc.say)
		}
		if c.closed != 1 {
			t.Errorf("%s: the body was closed %d times at the failed read, want once", tc.name, c.closed)
		}
		if _, err2 := b.Read(make([]byte, 8)); connect.CodeOf(err2) != connect.CodeResourceExhausted {
			t.Errorf("%s: a read after the failure: %v, want it failed again", tc.name, err2)
		}
		_ = b.Close()
		if c.closed != 2 {
			t.Errorf("%s: Close did not close the body", tc.name)
		}
	}
}
