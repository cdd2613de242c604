package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestDamagedFileSaysWhatToRun: a store file damaged at rest fails Open
// with one line that names the file and what to run. Before, a damaged
// sstable went through Pebble's default DataCorruption listener (Fatalf
// with the error's stack: 50 lines, no action), and a malformed MANIFEST
// said nothing to do either.
func TestDamagedFileSaysWhatToRun(t *testing.T) {
	cases := []struct {
		name   string
		flush  bool
		glob   string
		damage func(b []byte) // nil: the file is removed
		says   string
	}{
		{"sstable block", true, "*.sst", func(b []byte) { b[len(b)/4] ^= 0xff }, "damaged"},
		{"manifest record", false, "MANIFEST-*", func(b []byte) { b[len(b)/2] ^= 0xff }, "damaged"},
		{"sstable missing", true, "*.sst", nil, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{})
			if err := s.CreateTable(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 50; i++ {
				mustApply(t, s, mut(fmt.Sprint("k", i), uint64(i)))
			}
			if c.flush {
				if err := s.db.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			m, _ := filepath.Glob(filepath.Join(dir, c.glob))
			if len(m) == 0 {
				t.Fatalf("no %s", c.glob)
			}
			b, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			if c.damage == nil {
				err = os.Remove(m[0])
			} else {
				c.damage(b)
				err = os.WriteFile(m[0], b, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{Logger: quiet})
			if err == nil {
				kept := 0
				for i := 1; i <= 50; i++ {
					if _, ok, _ := s.Get(t.Context(), "t", fmt.Append(nil, "k", i), 0); ok {
						kept++
					}
				}
				s.Close()
				t.Fatalf("Open of a damaged store succeeded, %d of 50 rows read back", kept)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is %d lines, not one: %.400s", strings.Count(msg, "\n")+1, msg)
			}
			for _, want := range []string{strings.TrimSuffix(filepath.Base(m[0]), ".sst"), c.says, "dmesg", "restore DATA_DIR from a backup", "wail table reconcile"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %.400q does not say %q", msg, want)
				}
			}
		})
	}
}

// TestDamageFoundWhileServing: a damaged block read by a running store
// fails the store (fail stop, store.ErrStorage) with the same message,
// instead of Pebble's default Fatalf.
func TestDamageFoundWhileServing(t *testing.T) {
	dir := t.TempDir()
	opts := Options{VersionCacheKeys: -1, RowCacheBytes: -1} // read nothing at Open
	s := openT(t, dir, opts)
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		m := mut(fmt.Sprintf("k%05d", i), uint64(i+1))
		m.Value = []byte(strings.Repeat("v", 200))
		mustApply(t, s, m)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(m) != 1 {
		t.Fatalf("sstables %v", m)
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff // a data block of the rows, not the table registry's
	if err := os.WriteFile(m[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, opts)
	defer s.Close()
	var gerr error
	for i := 0; i < n && gerr == nil; i += 10 {
		_, _, gerr = s.Get(t.Context(), "t", fmt.Appendf(nil, "k%05d", i), 0)
	}
	if !errors.Is(gerr, store.ErrStorage) {
		t.Fatalf("reads of the damaged block: %v, want store.ErrStorage", gerr)
	}
	f := s.Failure()
	if f == nil || !strings.Contains(f.Error(), filepath.Base(m[0])+" is damaged") || !strings.Contains(f.Error(), "restore DATA_DIR") {
		t.Fatalf("Failure() = %v, want the damaged file and what to run", f)
	}
}
