package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokenFileRotation: a token file is read again once it changed and a
// second passed since it was last looked at; a file that cannot be read,
// or holds no token, after one was read keeps the last token; one that
// never could fails at once.
func TestTokenFileRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	mtime := time.Unix(2_000_000, 0)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		mtime = mtime.Add(time.Second) // a rotation's file is newer
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := newTokenFile(path, clock); err == nil || !strings.Contains(err.Error(), "token file "+path) {
		t.Fatalf("a missing file: %v; want an error naming it", err)
	}
	write("  \n")
	if _, err := newTokenFile(path, clock); err == nil || !strings.Contains(err.Error(), "holds no token") {
		t.Fatalf("an empty file: %v; want an error saying it holds no token", err)
	}
	write("one\n")
	f, err := newTokenFile(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		what    string
		advance time.Duration
		do      func()
		want    string
	}{
		{"read at start", 0, nil, "one"},
		{"rotated, within the second", 500 * time.Millisecond, func() { write("two") }, "one"},
		{"rotated, the second passed", 600 * time.Millisecond, nil, "two"},
		{"unchanged", 2 * time.Second, nil, "two"},
		{"emptied while rotated", 2 * time.Second, func() { write("") }, "two"},
		{"written", 2 * time.Second, func() { write("three") }, "three"},
		{"removed", 2 * time.Second, func() { _ = os.Remove(path) }, "three"},
		{"back", 2 * time.Second, func() { write("four") }, "four"},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.do != nil {
			s.do()
		}
		got, err := f.get()
		if err != nil || got != s.want {
			t.Fatalf("%s: %q, %v; want %q", s.what, got, err, s.want)
		}
	}
}
