package client

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	write("one\ntwo\n")
	if _, err := newTokenFile(path, clock); err == nil || !strings.Contains(err.Error(), "token file "+path) || !strings.Contains(err.Error(), "line break") {
		t.Fatalf("a file of two lines: %v; want an error naming it, saying a token has no line break", err)
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
		{"two lines", 2 * time.Second, func() { write("five\nsix\n") }, "four"},
		{"a space inside", 2 * time.Second, func() { write("five six") }, "four"},
		{"a CRLF line", 2 * time.Second, func() { write("five\r\n") }, "five"},
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

// TestTokenMalformed: a token with a space, a line break or a control
// character inside cannot be sent (net/http refuses the header, in an
// error that names neither the token nor where it came from, at every
// request): Token is refused at Dial, a TokenSource's at its request,
// each saying why; space around a Token is trimmed as a file's is.
func TestTokenMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		token string
		ok    bool
	}{{"wail_abc", true}, {" wail_abc\n", true}, {"wail_abc\r\n", true}, {"wail abc", false}, {"wail\nabc", false}, {"wail\x00abc", false}} {
		src, err := Options{Token: tc.token}.tokenSource()
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), "Token") {
				t.Errorf("Token %q: %v; want an error naming Token", tc.token, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Token %q: %v", tc.token, err)
			continue
		}
		if got, _ := src(context.Background()); got != strings.TrimSpace(tc.token) {
			t.Errorf("Token %q: sends %q", tc.token, got)
		}
	}
	b := bearer{token: func(context.Context) (string, error) { return "a\nb", nil }, scheme: "http", host: "x", next: http.DefaultTransport}
	req := httptest.NewRequest(http.MethodGet, "http://x/metrics", nil)
	if _, err := b.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "TokenSource") {
		t.Fatalf("a TokenSource's token with a line break: %v; want an error naming TokenSource", err)
	}
}
