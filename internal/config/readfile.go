package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// maxFileBytes bounds a configuration file: --config /dev/zero, or a FIFO
// that keeps writing, grew until memory ran out.
const maxFileBytes = 16 << 20

// readBounded reads the configuration file at path, at most maxFileBytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("config %s: larger than %d MiB: is it the configuration file?", path, maxFileBytes>>20)
	}
	return b, nil
}

// InvalidUTF8 names the line, column and value of b's first byte that is
// not UTF-8, or is "" when b is UTF-8.
func InvalidUTF8(b []byte) string {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			line := bytes.Count(b[:i], []byte("\n")) + 1
			col := utf8.RuneCount(b[bytes.LastIndexByte(b[:i], '\n')+1:i]) + 1
			return fmt.Sprintf("line %d, column %d: byte %#x is not UTF-8 text", line, col, b[i])
		}
		i += size
	}
	return ""
}
