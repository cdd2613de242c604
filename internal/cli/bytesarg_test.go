package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArgDecoder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "v.bin")
	if err := os.WriteFile(file, []byte{0, 1, 'x', '\n'}, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		enc       encoding
		arg       string
		stdin     string
		want      []byte
		wantErr   string
		wantUsage bool
	}{
		{name: "text", arg: "hello world", want: []byte("hello world")},
		{name: "empty text", arg: "", want: []byte{}},
		{name: "file", arg: "@" + file, want: []byte{0, 1, 'x', '\n'}},
		{name: "file is not decoded", enc: encHex, arg: "@" + file, want: []byte{0, 1, 'x', '\n'}},
		{name: "stdin", arg: "@-", stdin: "from stdin\n", want: []byte("from stdin\n")},
		{name: "escaped at", arg: "@@home", want: []byte("@home")},
		{name: "missing file", arg: "@" + filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "hex", enc: encHex, arg: "00ff10", want: []byte{0, 0xff, 0x10}},
		{name: "hex with 0x", enc: encHex, arg: "0xCAFE", want: []byte{0xca, 0xfe}},
		{name: "bad hex", enc: encHex, arg: "xyz", wantErr: "invalid hex", wantUsage: true},
		{name: "odd hex", enc: encHex, arg: "abc", wantErr: "invalid hex", wantUsage: true},
		{name: "base64", enc: encBase64, arg: "aGVsbG8=", want: []byte("hello")},
		{name: "base64 raw", enc: encBase64, arg: "aGVsbG8", want: []byte("hello")},
		{name: "base64 url", enc: encBase64, arg: "_-8", want: []byte{0xff, 0xef}},
		{name: "bad base64", enc: encBase64, arg: "!!!", wantErr: "invalid base64", wantUsage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newArgDecoder(tc.enc, strings.NewReader(tc.stdin))
			got, err := d.decode("VALUE", tc.arg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if isUsage := errors.As(err, new(usageError)); isUsage != tc.wantUsage {
					t.Errorf("usage error = %t, want %t", isUsage, tc.wantUsage)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("decode(%q) = %q, %v; want %q", tc.arg, got, err, tc.want)
			}
		})
	}
}

func TestArgDecoderStdinOnce(t *testing.T) {
	t.Parallel()
	d := newArgDecoder(encText, strings.NewReader("x"))
	if _, err := d.decode("KEY", "@-"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.decode("VALUE", "@-"); err == nil {
		t.Fatal("second @- accepted")
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	in := []byte{0, 1, 2, 0xfe, 0xff}
	for _, enc := range []encoding{encText, encHex, encBase64} {
		got, err := decodeText(enc, encodeText(enc, in))
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("encoding %d: round trip = %v, %v", enc, got, err)
		}
	}
	if _, err := parseEncoding(true, true); err == nil {
		t.Error("--hex with --base64 accepted")
	}
}

func TestDisplayBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    []byte
		limit int
		want  string
	}{
		{[]byte("plain key"), 0, "plain key"},
		{[]byte{}, 0, `""`},
		{[]byte{0, 0xab}, 0, "0x00ab"},
		{[]byte("a\nb"), 0, "0x610a62"},
		{[]byte("héllo wörld"), 5, "héllo..."},
		{[]byte{0xff, 0xff, 0xff}, 4, "0xff..."},
		// Text that starts with 0x is shown as hex too: "0x6bff" would
		// pass for the bytes 6b ff (as in the console).
		{[]byte("0x6bff"), 0, "0x307836626666"},
		{[]byte("0Xa"), 0, "0x305861"},
		{[]byte("0"), 0, "0"},
		{[]byte("x0"), 0, "x0"},
	}
	for _, tc := range tests {
		if got := displayBytes(tc.in, tc.limit); got != tc.want {
			t.Errorf("displayBytes(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}
