package server

import (
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
)

// TestOwnerFormat: what a table's topics record they were made for
// (topicOwner) reads back as the table (parseOwner), whatever the table
// name holds ('_', digits, the longest name) and whatever the created_at
// (µs, as the catalog saves it); what no wail writes reads as no table.
func TestOwnerFormat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 16, 0, 0, 123456000, time.UTC)
	for _, name := range []string{"t", "t_1", "a9_b_", "x" + strings.Repeat("_9", 31)} {
		for _, created := range []time.Time{at, time.UnixMicro(1), time.UnixMicro(1<<62 - 1)} {
			tb := catalog.Table{Name: name, CreatedAt: created}
			owner := topicOwner(tb)
			got, ok := parseOwner(owner)
			if !ok || got.Name != name || !got.CreatedAt.Equal(created) {
				t.Errorf("parseOwner(%q) = %+v, %v; want %s at %s", owner, got, ok, name, created)
			}
		}
	}
	// Without created_at: the zero time, or as an entry saved without one
	// reads (created_at_us 0).
	for _, tb := range []catalog.Table{{Name: "t"}, catalog.FromProto(&wailv1.Table{Name: "t"})} {
		if owner := topicOwner(tb); owner != "" {
			t.Errorf("a table without created_at (%v): owner %q, want none (parseOwner takes no table from it)", tb.CreatedAt, owner)
		}
	}
	for _, owner := range []string{"", "table:", "table:t", "table:t:", "table::5", "table:t:0", "table:t:-5",
		"table:t:x", "Table:t:5", "sink:t:5", "table:t:99999999999999999999"} {
		if got, ok := parseOwner(owner); ok {
			t.Errorf("parseOwner(%q) = %+v, want no table", owner, got)
		}
	}
}
