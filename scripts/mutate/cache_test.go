package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBuildCache: the mutants' cache is kept while it is under its bound,
// and emptied past it only by the last run to end (a run still building
// in it keeps it).
func TestBuildCache(t *testing.T) {
	fill := func(t *testing.T, dir string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "0a"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0a", "entry-d"), make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	left := func(t *testing.T, dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	for _, tc := range []struct {
		name     string
		runs     int   // runs holding the cache at once
		max      int64 // bytes
		emptied  []bool
		wantLeft int // entries left beside the lock file
	}{
		{"under its bound", 1, 1000, []bool{false}, 1},
		{"over its bound", 1, 999, []bool{true}, 0},
		{"over, another run holds it", 2, 0, []bool{false, true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			var cs []*buildCache
			for range tc.runs {
				c, err := openCache(dir)
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			fill(t, dir)
			for i, c := range cs {
				emptied, err := c.close(tc.max)
				if err != nil || emptied != tc.emptied[i] {
					t.Fatalf("run %d: close = %v, %v; want %v", i, emptied, err, tc.emptied[i])
				}
				if i < len(cs)-1 && len(left(t, dir)) != 2 {
					t.Fatalf("run %d emptied the cache while another run held it: %v", i, left(t, dir))
				}
			}
			names := left(t, dir)
			if len(names) != tc.wantLeft+1 || names[len(names)-1] != ".wail-mutate.lock" && tc.wantLeft == 0 {
				t.Fatalf("left %v, want %d entries and the lock file", names, tc.wantLeft)
			}
			// The cache opens again after being emptied.
			c, err := openCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.close(1 << 30); err != nil {
				t.Fatal(err)
			}
		})
	}
}
