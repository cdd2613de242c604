package sqlstore

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
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

func TestWinners(t *testing.T) {
	t.Parallel()
	muts := []store.Mutation{
		{Key: []byte("a"), Version: 2},
		{Key: []byte("b"), Version: 5},
		{Key: []byte("a"), Version: 7}, // beats a@2
		{Key: []byte("a"), Version: 7}, // a tie: the earliest stays
		{Key: []byte("b"), Version: 1},
	}
	winners, slot, err := Winners(muts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(winners, []int{2, 1}) || !reflect.DeepEqual(slot, []int{0, 1, 0, 0, 1}) {
		t.Fatalf("winners %v slot %v", winners, slot)
	}
	if _, _, err := Winners([]store.Mutation{{Key: []byte("x"), Version: 1 << 63}}); err == nil {
		t.Fatal("a version above MaxInt64 was accepted")
	}
}
