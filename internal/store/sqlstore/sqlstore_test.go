package sqlstore

import (
	"strings"
	"testing"
)

func TestTableName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 63)
	tests := []struct {
		name string
		max  int
		want string
	}{
		{"orders", 63, "wail_orders"},
		{strings.Repeat("b", 58), 63, "wail_" + strings.Repeat("b", 58)},
	}
	for _, tc := range tests {
		if got := TableName(tc.name, tc.max); got != tc.want {
			t.Errorf("TableName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	a, b := TableName(long, 63), TableName(long[:62]+"c", 63)
	if len(a) > 63 || !strings.HasPrefix(a, LongPrefix) || a == b {
		t.Errorf("long names: %q and %q", a, b)
	}
}
