package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestDoctorHealth: doctor prints a running server's health and fails when
// it is unhealthy; the embedded store that server holds is skipped.
func TestDoctorHealth(t *testing.T) {
	t.Parallel()
	var dataDir string
	srv, url := servertest.StartServer(t, func(c *config.Config) { dataDir = c.DataDir })
	ctx := context.Background()
	own := t.TempDir()
	code, out, errOut := runCLI(ctx, url, "", "doctor", "--data-dir", own)
	if code != 0 || !strings.Contains(out, "server       ok at "+url) || !strings.Contains(out, "store        ok") {
		t.Fatalf("healthy server: code %d\n%s%s", code, out, errOut)
	}
	srv.Health().Set("resolver/t/0", health.Degraded, "partition 0 is parked on key k", "wail dlq ls t")
	code, out, _ = runCLI(ctx, url, "", "doctor", "--data-dir", own)
	if code != 0 || !strings.Contains(out, "server       degraded at "+url) ||
		!strings.Contains(out, "  degraded resolver/t/0: partition 0 is parked on key k (wail dlq ls t) since ") {
		t.Fatalf("degraded server: code %d\n%s", code, out)
	}
	srv.Health().Set("store", health.Unhealthy, "disk full", "free space in the data dir")
	code, out, errOut = runCLI(ctx, url, "", "doctor", "--data-dir", own)
	if code != 1 || !strings.Contains(out, "server       unhealthy at "+url) || !strings.Contains(out, "  unhealthy store: disk full (free space in the data dir)") ||
		!strings.Contains(errOut, "failed checks: [server]") {
		t.Fatalf("unhealthy server: code %d\n%s%s", code, out, errOut)
	}
	srv.Health().Clear("store")
	code, out, errOut = runCLI(ctx, url, "", "doctor", "--data-dir", dataDir) // the server's own data dir
	if code != 0 || !strings.Contains(out, "store        skipped: the embedded store is in use (by the server at "+url) {
		t.Fatalf("the server's data dir: code %d\n%s%s", code, out, errOut)
	}
}
