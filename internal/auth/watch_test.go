package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatched: loaded again only when a file changed and the interval
// passed; a change that does not load keeps the last good value, says so,
// and is tried again at the next check.
func TestWatched(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	loads := 0
	var errs []error
	w, err := Watch([]string{path}, time.Second, func() (string, error) {
		loads++
		b, err := os.ReadFile(path)
		if strings.HasPrefix(string(b), "bad") {
			return "", errors.New("bad file")
		}
		return string(b), err
	}, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	w.checked = now
	step := func(d time.Duration, want string, wantLoads int) {
		t.Helper()
		now = now.Add(d)
		if got := w.Get(); got != want || loads != wantLoads {
			t.Fatalf("Get = %q after %d loads, want %q after %d", got, loads, want, wantLoads)
		}
	}
	step(2*time.Second, "one", 1) // no change: no load
	write("two")
	step(500*time.Millisecond, "one", 1) // within the interval: not checked
	step(time.Second, "two", 2)
	write("bad!")
	step(time.Second, "two", 3) // kept
	step(time.Second, "two", 4) // tried again
	write("three")
	step(time.Second, "three", 5)
	step(time.Second, "three", 5) // loaded: no change since
	// Changed in place, to the same size, with another modification time
	// only; then its mode only (made readable by its group).
	if err := os.WriteFile(path, []byte("four!"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	step(time.Second, "four!", 6)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	step(time.Second, "four!", 7)
	if len(errs) != 6 || errs[0] != nil || errs[1] == nil || errs[2] == nil || errs[3] != nil || errs[4] != nil || errs[5] != nil {
		t.Fatalf("onError calls %v, want nil (two), bad, bad, nil (three), nil (four!), nil (its mode)", errs)
	}
	if _, err := Watch([]string{path}, time.Second, func() (string, error) { return "", errors.New("no") }, nil); err == nil {
		t.Fatal("Watch returned no error on a first load that failed")
	}
}
