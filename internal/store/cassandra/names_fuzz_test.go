package cassandra

import (
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// FuzzGenerationOfName: table names come from the cluster
// (system_schema.tables): whatever a name is, reading a generation from it
// does not panic, and a generation read is the one whose name it is.
func FuzzGenerationOfName(f *testing.F) {
	long := "t234567890123456789012345678901234567890123456"
	for _, s := range []struct {
		name string
		gen  int64
	}{{"orders", 0}, {"orders", 1}, {"orders", 9_000_000_000_000_000_000}, {long, 7}, {long, 0}} {
		f.Add(s.name, generationName(s.name, s.gen))
	}
	f.Add("orders", "wailg01_orders")
	f.Add("orders", "wailg-1_orders")
	f.Fuzz(func(t *testing.T, name, cname string) {
		if store.ValidateTableName(name) != nil {
			return // names come from wail's catalog, checked there
		}
		gen, ok := generationOfName(name, cname)
		if !ok {
			return
		}
		if gen < 0 || generationName(name, gen) != cname {
			t.Fatalf("generationOfName(%q, %q) = %d, whose name is %q", name, cname, gen, generationName(name, gen))
		}
	})
}

// FuzzParseCassandraSize: sizes come from the nodes' settings: a value
// wail cannot read is an error, never a panic, a negative size or one
// that overflowed.
func FuzzParseCassandraSize(f *testing.F) {
	for _, s := range []string{"16MiB", "16384KiB", "53687091B", "16mb", "16m", " 2 g ", "", "x", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCassandraSize(s)
		if err == nil && (n < 0 || n > 1<<62) {
			t.Fatalf("%q -> %d", s, n)
		}
	})
}
