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

// checkBrackets refuses a .proto source whose braces, brackets and angle
// brackets, outside strings and comments, nest deeper than maxBrackets,
// naming the line and column where they do. It reads nothing else: what
// does not parse is for the compiler to say.
func checkBrackets(path, src string) error {
	depth := 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; {
		case strings.HasPrefix(src[i:], "//"):
			if n := strings.IndexByte(src[i:], '\n'); n >= 0 {
				i += n
			} else {
				i = len(src)
			}
		case strings.HasPrefix(src[i:], "/*"):
			if n := strings.Index(src[i+2:], "*/"); n >= 0 {
				i += 2 + n + 1
			} else {
				i = len(src)
			}
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
				line := 1 + strings.Count(src[:i], "\n")
				col := i - strings.LastIndexByte(src[:i], '\n')
				return fmt.Errorf("%w: %s:%d:%d: nesting depth of braces, brackets and angle brackets must be at most %d", ErrInvalid, path, line, col, maxBrackets)
			}
		case c == '}' || c == ']' || c == '>':
			depth = max(depth-1, 0)
		}
	}
	return nil
}
