package cli

import (
	"strings"
	"testing"
	"unicode"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestPrintedErrorsPrintable: an error an endpoint (or a resolver)
// wrote is printed on one line of printable characters by `sink
// describe`, `dlq ls` and `dlq show`: a letter written before the server
// cleaned what it quotes may still hold an endpoint's line breaks and
// escape sequences, which forged output lines and drove the terminal.
func TestPrintedErrorsPrintable(t *testing.T) {
	bad := "HTTP 503: busy\r\nstate:           running\x1b[2J\x1b]8;;http://x\x07\x00\u202eevil"
	check := func(what, out string) {
		t.Helper()
		for _, r := range out {
			if r != '\n' && r != '\t' && (!unicode.IsPrint(r) && r != ' ' || unicode.Is(unicode.Bidi_Control, r)) {
				t.Errorf("%s %q holds %U", what, out, r)
				return
			}
		}
		if strings.Contains(out, "\nstate:           running") {
			t.Errorf("%s %q: the error forged a line", what, out)
		}
	}
	check("oneLine", oneLine(bad, 0))
	var b strings.Builder
	if err := printSink(&b, &wailv1.SinkStatus{Sink: &wailv1.Sink{Name: "s", Table: "t"}, State: "retrying", LastError: bad, LastErrorAtMs: 1}); err != nil {
		t.Fatal(err)
	}
	check("sink describe", b.String())
}
