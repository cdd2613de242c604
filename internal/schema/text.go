package schema

import (
	"fmt"
	"strings"
)

// maxBrackets bounds how deep braces, brackets and angle brackets nest in
// a .proto file's text: messages (fewer than maxNesting), a oneof, a
// field's options and an option's message literal. protocompile's option
// interpreter takes time and memory quadratic in a literal's depth (a 254
// KiB literal 52,000 levels deep took 70 s and 11 GB); no real schema
// nests a literal near this deep.
const maxBrackets = 128

// maxLineTokens bounds the tokens on one line of a .proto file's text.
// protocompile finds a token's column by scanning its line from the start,
// so a line of many tokens costs time quadratic in its length (250 KiB of
// reserved names on one line: 5 s of CPU, going on after the request's
// timeout). No written or generated schema puts near this many on a line.
const maxLineTokens = 4096

// checkText refuses a .proto source whose braces, brackets and angle
// brackets, outside strings and comments, nest deeper than maxBrackets, or
// one of whose lines holds more than maxLineTokens tokens (words, numbers,
// strings and punctuation), naming the line (and column) where it does. It
// reads nothing else: what does not parse is for the compiler to say.
func checkText(path, src string) error {
	depth, tokens, inWord := 0, 0, false
	lineAt := func(i int) (line, col int) {
		return 1 + strings.Count(src[:i], "\n"), i - strings.LastIndexByte(src[:i], '\n')
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		word := c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
		switch {
		case word || c == ' ' || c == '\t' || c == '\r':
		case c == '\n':
			tokens = 0
		case strings.HasPrefix(src[i:], "//"):
			if n := strings.IndexByte(src[i:], '\n'); n >= 0 {
				i += n - 1 // the newline ends the line's count
			} else {
				i = len(src)
			}
		case strings.HasPrefix(src[i:], "/*"):
			if n := strings.Index(src[i+2:], "*/"); n >= 0 {
				if strings.Contains(src[i:i+2+n], "\n") {
					tokens = 0
				}
				i += 2 + n + 1
			} else {
				i = len(src)
			}
		default:
			tokens++ // punctuation, or a string
		}
		if word && !inWord {
			tokens++
		}
		inWord = word
		if tokens > maxLineTokens {
			line, _ := lineAt(i)
			return fmt.Errorf("%w: %s:%d: a line of more than %d tokens: put them on several lines", ErrInvalid, path, line, maxLineTokens)
		}
		switch {
		case c == '"' || c == '\'':
			// To the closing quote, or the end of the line that ends an
			// unterminated string.
			for i++; i < len(src) && src[i] != c && src[i] != '\n'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case c == '{' || c == '[' || c == '<':
			depth++
			if depth > maxBrackets {
				line, col := lineAt(i)
				return fmt.Errorf("%w: %s:%d:%d: nesting depth of braces, brackets and angle brackets must be at most %d", ErrInvalid, path, line, col, maxBrackets)
			}
		case c == '}' || c == ']' || c == '>':
			depth = max(depth-1, 0)
		}
	}
	return nil
}
