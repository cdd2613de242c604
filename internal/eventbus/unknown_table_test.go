package eventbus

import (
	"strings"
	"testing"
)

// TestUnknownTableAdvice: a table that does not exist is one to create,
// unless no table can have its name ("Orders"): then the answer says what
// a table name is, not "create it with `wail table create Orders`", which
// refuses that name.
func TestUnknownTableAdvice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ table, want, not string }{
		{"orders", "create it with `wail table create orders`", ""},
		{"Orders", `invalid table name "Orders"`, "wail table create"},
		{"", `invalid table name ""`, "wail table create"},
	} {
		err := unknownTable(tc.table)
		if msg := err.Error(); !strings.Contains(msg, tc.want) || tc.not != "" && strings.Contains(msg, tc.not) {
			t.Errorf("unknownTable(%q) = %q, want it saying %q", tc.table, msg, tc.want)
		}
	}
}
