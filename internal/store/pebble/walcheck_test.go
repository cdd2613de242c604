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

// TestDamagedWALRefused: Pebble replays the last WAL up to the first chunk
// that fails its checksum and, when no later 32 KiB block shows the damage
// was synced, takes it for the torn tail of a crash: one flipped byte in a
// WAL smaller than a block dropped every acknowledged write after it, and
// the store opened as if nothing happened. Open must refuse a WAL whose
// damaged chunk is followed by a chunk that says it was synced, naming the
// file, the position and what to run; a real torn tail (a write cut short,
// bytes after the end that are no chunk of this WAL) still opens, with
// everything before it.
func TestDamagedWALRefused(t *testing.T) {
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
			// offsets (walcheck.go): write to the next one.
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
				if !errors.Is(err, ErrDamagedWAL) {
					t.Errorf("error %v is not ErrDamagedWAL", err)
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
