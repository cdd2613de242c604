package pebble

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGarbageOptionsFile: a garbage OPTIONS file (Pebble's record of the
// options it was opened with, read back at Open only to check them) fails
// Open with one line naming the file and what to do. Before it answered
// Pebble's bare parse error (a corruption: the advice for damaged data,
// restore the whole store from a backup) or its comparer check. Pebble
// writes a new OPTIONS file at every Open and checks none when there is
// none: removing the file is the fix, and the rows are all there after.
func TestGarbageOptionsFile(t *testing.T) {
	cases := []struct {
		name    string
		garbage string
	}{
		{"not key=value", "\x00\x17garbage\xff\n"},
		{"another store's options", "[Options]\n  comparer=some.other.Comparer\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{})
			if err := s.CreateTable(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 10; i++ {
				mustApply(t, s, mut(fmt.Sprint("k", i), uint64(i)))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			m, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
			if len(m) != 1 {
				t.Fatalf("OPTIONS files: %v, want one", m)
			}
			if err := os.WriteFile(m[0], []byte(c.garbage), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, Options{Logger: quiet})
			if err == nil {
				t.Fatal("Open with a garbage OPTIONS file succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is %d lines, not one: %.400s", strings.Count(msg, "\n")+1, msg)
			}
			for _, want := range []string{m[0], "remove it", "rewrites"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %.400q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "restore DATA_DIR") {
				t.Errorf("error %.400q says to restore the store: the rows are fine", msg)
			}
			// What it says to do works: every row is there.
			if err := os.Remove(m[0]); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir, Options{})
			for i := 1; i <= 10; i++ {
				if _, ok, err := s.Get(t.Context(), "t", fmt.Append(nil, "k", i), 0); err != nil || !ok {
					t.Fatalf("k%d after the OPTIONS file's removal: found %v, %v", i, ok, err)
				}
			}
		})
	}
}
