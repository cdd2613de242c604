package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeAddressTaken: `wail serve` on an address another process
// listens on fails at once, says what to run and what to change, and
// leaves the data directory as it found it. It created the data dir (its
// log and store directories) before it tried the address: a typo in
// --data-dir next to a taken port left directories behind.
func TestServeAddressTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runCLI(context.Background(), "", "", "serve", "--listen", ln.Addr().String(), "--data-dir", dir)
	if code != 1 {
		t.Errorf("exit code %d, want 1; stderr %s", code, stderr)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, want := range []string{"address already in use", "ss -ltnp 'sport = :" + port + "'", "--listen"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s: %v; want it not created", dir, err)
	}
}
