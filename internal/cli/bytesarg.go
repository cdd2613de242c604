package cli

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// encoding is how KEY and VALUE arguments are spelled on the command line
// and how get prints a value.
type encoding int

const (
	encText encoding = iota
	encHex
	encBase64
)

// parseEncoding turns the --hex and --base64 flags into an encoding.
func parseEncoding(useHex, useBase64 bool) (encoding, error) {
	switch {
	case useHex && useBase64:
		return encText, usageErrorf("--hex and --base64 are mutually exclusive")
	case useHex:
		return encHex, nil
	case useBase64:
		return encBase64, nil
	}
	return encText, nil
}

// argDecoder resolves KEY and VALUE arguments to bytes:
//
//	text     the argument itself, or decoded with --hex / --base64
//	@FILE    the raw contents of FILE (never decoded)
//	@-       the raw contents of stdin (at most one argument)
//	@@text   the literal text "@text" (then decoded like any text)
type argDecoder struct {
	enc       encoding
	stdin     io.Reader
	stdinUsed bool
	limit     int64
}

func newArgDecoder(enc encoding, stdin io.Reader) *argDecoder {
	return &argDecoder{enc: enc, stdin: stdin, limit: maxArgBytes}
}

// maxArgBytes bounds what @FILE and @- read: the largest value a server
// takes (limits.max_value_bytes is at most 64 MiB). Unbounded, @/dev/zero,
// or a pipe that never ends, grew until memory ran out.
const maxArgBytes = 64 << 20

// readBounded reads r to its end, or fails once it holds more than d.limit
// bytes; what names it in the error (stdin, the file).
func (d *argDecoder) readBounded(name, what string, r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, d.limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", name, what, err)
	}
	if int64(len(b)) > d.limit {
		return nil, fmt.Errorf("%s: %s holds more than %d bytes, more than any server takes (limits.max_value_bytes)", name, what, d.limit)
	}
	return b, nil
}

// decode resolves one argument; name ("KEY", "VALUE") goes into errors.
func (d *argDecoder) decode(name, arg string) ([]byte, error) {
	switch {
	case strings.HasPrefix(arg, "@@"):
		arg = arg[1:]
	case arg == "@-":
		if d.stdinUsed {
			return nil, usageErrorf("%s: stdin (@-) can be used only once", name)
		}
		d.stdinUsed = true
		if d.stdin == nil {
			return nil, fmt.Errorf("%s: no stdin", name)
		}
		return d.readBounded(name, "stdin", d.stdin)
	case strings.HasPrefix(arg, "@"):
		f, err := os.Open(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		return d.readBounded(name, arg[1:], f)
	}
	b, err := decodeText(d.enc, arg)
	if err != nil {
		return nil, usageErrorf("%s %q: %v", name, arg, err)
	}
	return b, nil
}

// decodeText decodes s in enc. Hex may carry a 0x prefix; base64 may be
// standard or URL-safe, padded or not.
func decodeText(enc encoding, s string) ([]byte, error) {
	switch enc {
	case encHex:
		t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		b, err := hex.DecodeString(t)
		if err != nil {
			return nil, fmt.Errorf("invalid hex: %w", err)
		}
		return b, nil
	case encBase64:
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(s); err == nil {
				return b, nil
			}
		}
		return nil, errors.New("invalid base64")
	}
	return []byte(s), nil
}

// encodeText is the inverse of decodeText (hex without a prefix, padded
// standard base64, text as is).
func encodeText(enc encoding, b []byte) string {
	switch enc {
	case encHex:
		return hex.EncodeToString(b)
	case encBase64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// isPrintable reports whether b is valid UTF-8 made only of printable runes
// (spaces included, control characters not).
func isPrintable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// displayBytes shows b as text when printable, else as 0x-prefixed hex;
// text that starts with "0x" (or "0X") too, or it would pass for other
// bytes shown as hex (the text "0x6bff" for the bytes 6b ff), as the
// console shows it. A limit > 0 truncates the result to that many
// characters, marked with "...".
func displayBytes(b []byte, limit int) string {
	var s string
	switch {
	case len(b) == 0:
		return `""`
	case isPrintable(b) && !(len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')):
		s = string(b)
	default:
		s = "0x" + hex.EncodeToString(b)
	}
	if limit > 0 && utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = string(r[:limit]) + "..."
	}
	return s
}
