package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestServeTunesMemory: wail serve applies memory.gc_percent and
// memory.limit_bytes to its process, as its /metrics shows (Go's
// collector reports them).
func TestServeTunesMemory(t *testing.T) {
	pct, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(pct)
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(limit) })
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "wail.yaml")
	if err := os.WriteFile(cfgFile, []byte("memory:\n  gc_percent: 250\n  limit_bytes: 1073741824\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop := runServeLine(t, "serve", []string{"serve", "--config", cfgFile}, filepath.Join(dir, "data"))
	defer stop()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\ngo_gc_gogc_percent 250\n", "\ngo_gc_gomemlimit_bytes 1.073741824e+09\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics has no %q", strings.TrimSpace(want))
		}
	}
}
