package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDamagedLogRefused: Pebble replays the last WAL up to the first chunk
// that fails its checksum and, when no later 32 KiB block shows the damage
// was synced, takes it for the torn tail of a crash: one flipped byte in a
// WAL smaller than a block dropped every acknowledged write after it, and
// the store opened as if nothing happened. Open must refuse a WAL whose
// damaged chunk is followed by a chunk that says it was synced, naming the
// file, the position and what to run; a real torn tail (a write cut short,
// bytes after the end that are no chunk of this WAL) still opens, with
// everything before it.
func TestDamagedLogRefused(t *testing.T) {
	const n = 50
	cases := []struct {
		name    string
		damage  func(b []byte) []byte
		refused bool
		kept    int // rows that must read back when it opens
	}{
		{"byte flipped in an early record", func(b []byte) []byte { b[100] ^= 0xff; return b }, true, 0},
		{"byte flipped in the middle", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }, true, 0},
		{"last record cut short", func(b []byte) []byte { return b[:len(b)-5] }, false, n - 1},
		{"garbage after the end", func(b []byte) []byte { return append(b, []byte(strings.Repeat("\x09garbage", 100))...) }, false, n},
		{"zeros after the end", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, false, n},
		{"untouched", func(b []byte) []byte { return b }, false, n},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{})
			if err := s.CreateTable(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
			// The first WAL of a new store predates its format's sync
			// offsets (logcheck.go): write to the next one.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{})
			for i := 1; i <= n; i++ {
				mustApply(t, s, mut(fmt.Sprint("k", i), uint64(i)))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			wal := lastWAL(t, dir)
			b, err := os.ReadFile(wal)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(wal, c.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{Logger: quiet})
			if c.refused {
				if err == nil {
					kept := 0
					for i := 1; i <= n; i++ {
						if _, ok, _ := s.Get(t.Context(), "t", fmt.Append(nil, "k", i), 0); ok {
							kept++
						}
					}
					s.Close()
					t.Fatalf("Open of a damaged WAL succeeded, %d of %d acknowledged rows left", kept, n)
				}
				for _, want := range []string{filepath.Base(wal), "damaged", "truncate -s", "restore", "wail table reconcile"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if !errors.Is(err, ErrDamagedLog) {
					t.Errorf("error %v is not ErrDamagedLog", err)
				}
				// What the error says to run to accept the loss opens
				// the store with the rows before the damage.
				m := regexp.MustCompile(`truncate -s (\d+) `).FindStringSubmatch(err.Error())
				if m == nil {
					t.Fatalf("no truncate command in %v", err)
				}
				size, _ := strconv.Atoi(m[1])
				if err := os.Truncate(wal, int64(size)); err != nil {
					t.Fatal(err)
				}
				s = openT(t, dir, Options{})
				defer s.Close()
				if _, ok, err := s.Get(t.Context(), "t", []byte("k1"), 0); !ok || err != nil {
					t.Fatalf("after the truncate, row k1 (before the damage) lost (%v)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			for i := 1; i <= c.kept; i++ {
				if _, ok, err := s.Get(t.Context(), "t", fmt.Append(nil, "k", i), 0); !ok || err != nil {
					t.Fatalf("row k%d lost (%v)", i, err)
				}
			}
		})
	}
}

// lastWAL is the WAL of the highest number in dir.
func lastWAL(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) == 0 {
		t.Fatal("no WAL")
	}
	return m[len(m)-1]
}

// TestDamagedManifestRefused: Pebble reads the MANIFEST up to the first
// record that fails its checksum and drops every version edit after it,
// silently: a flipped byte in its second record opened the store empty,
// and Pebble deleted the sstables no edit it read named. Open must refuse
// damage followed by a valid record (each edit is synced before the next
// is written), and still open a MANIFEST whose last edit is torn.
func TestDamagedManifestRefused(t *testing.T) {
	const rounds, n = 3, 50
	src := t.TempDir()
	s := openT(t, src, Options{})
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	for r := range rounds {
		for i := 1; i <= n; i++ {
			mustApply(t, s, mut(fmt.Sprint("k", r*n+i), uint64(r*n+i)))
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := filepath.Glob(filepath.Join(src, "MANIFEST-*"))
	if len(m) != 1 {
		t.Fatalf("manifests %v", m)
	}
	orig, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	// The positions of the records' starts (each edit is one chunk here).
	var starts []int
	for pos := 0; pos < len(orig); {
		end, _, ok := logChunk(orig, pos, 0)
		if !ok {
			t.Fatalf("no chunk at %d of the MANIFEST", pos)
		}
		starts = append(starts, pos)
		pos = end
	}
	if len(starts) < 4 {
		t.Fatalf("MANIFEST of %d records, want at least 4", len(starts))
	}
	type damaged struct {
		name    string
		damage  func(b []byte) []byte
		refused bool
	}
	cases := []damaged{{"last record torn", func(b []byte) []byte { return b[:len(b)-5] }, false}}
	for _, r := range []int{1, 2, len(starts) - 2} {
		for _, off := range []int{2, 4, 9} { // checksum, length, payload
			cases = append(cases, damaged{fmt.Sprintf("record %d byte %d", r, off), func(b []byte) []byte { b[starts[r]+off] ^= 0x40; return b }, true})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			b := c.damage(append([]byte(nil), orig...))
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(m[0])), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{Logger: quiet})
			if c.refused {
				if err == nil {
					kept := countRows(t, s, rounds*n)
					s.Close()
					t.Fatalf("Open of a damaged MANIFEST succeeded, %d of %d acknowledged rows left", kept, rounds*n)
				}
				if !errors.Is(err, ErrDamagedLog) || !strings.Contains(err.Error(), "MANIFEST-") || !strings.Contains(err.Error(), "restore DATA_DIR") {
					t.Fatalf("Open: %v, want ErrDamagedLog naming the MANIFEST and what to run", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if kept := countRows(t, s, rounds*n); kept != rounds*n {
				t.Fatalf("%d of %d rows after a torn last edit", kept, rounds*n)
			}
		})
	}
}

func countRows(t *testing.T, s *Store, n int) int {
	kept := 0
	for i := 1; i <= n; i++ {
		if _, ok, _ := s.Get(t.Context(), "t", fmt.Append(nil, "k", i), 0); ok {
			kept++
		}
	}
	return kept
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
