package cli

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// TestDoctorServerErrors: a server that answers at --addr but whose health
// cannot be read (its certificate is not trusted, it speaks TLS to a plain
// request, it takes the request and never answers) fails the server check
// with the reason and what to do; only an address where nothing listens is
// "none answers", which fails nothing.
func TestDoctorServerErrors(t *testing.T) {
	t.Parallel()
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes that fail
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	for _, tc := range []struct {
		name, addr string
		wantCode   int
		want       []string
		// timeout: 500ms only where the server never answers; the TLS
		// handshakes of the others took longer on a loaded machine (CI at
		// load 10: "did not answer within 500ms" for the untrusted one)
		timeout string
	}{
		{name: "untrusted certificate", addr: "https://" + tlsAddr, wantCode: 1,
			want: []string{"server       FAIL: https://" + tlsAddr + ": ", "certificate", "--ca"}},
		{name: "plain http to a TLS server", addr: tlsAddr, wantCode: 1,
			want: []string{"server       FAIL: http://" + tlsAddr + "/healthz answered 400 Bad Request", "speaks TLS", "--ca"}},
		{name: "no answer", addr: silentAddr(t), wantCode: 1, want: []string{"server       FAIL: ", "did not answer within 500ms"}, timeout: "500ms"},
		{name: "nothing listens", addr: closedAddr(t), want: []string{"server       none answers at "}},
	} {
		if tc.timeout == "" {
			tc.timeout = "20s"
		}
		code, out, errOut := runCLI(context.Background(), tc.addr, "", "doctor", "--data-dir", t.TempDir(), "--timeout", tc.timeout)
		ok := code == tc.wantCode
		for _, w := range tc.want {
			ok = ok && strings.Contains(out, w)
		}
		if !ok {
			t.Errorf("%s: code %d\n%s%s\nwant code %d, output with %q", tc.name, code, out, errOut, tc.wantCode, tc.want)
		}
	}
}

// TestDoctorMissingDataDir: a --data-dir that does not exist (a typo) fails
// the check, naming it, and is not created: doctor made an empty store and
// log there and said "catalog ok (0 tables)", as if the deployment held no
// table.
func TestDoctorMissingDataDir(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "typo")
	code, out, errOut := runCLI(context.Background(), "http://127.0.0.1:1", "", "doctor", "--data-dir", missing, "--timeout", "2s")
	if code != 1 || !strings.Contains(out, "data dir     FAIL: "+missing+" does not exist") {
		t.Fatalf("a data dir that does not exist: code %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("doctor created the data dir it was given: %v", err)
	}
}

// TestDoctorNegativeTimeout: a negative --timeout is refused (usage, exit
// 2), not taken silently as the default bound.
func TestDoctorNegativeTimeout(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(context.Background(), "http://127.0.0.1:1", "", "doctor", "--data-dir", t.TempDir(), "--timeout", "-5s")
	if code != 2 || !strings.Contains(errOut, "--timeout -5s is negative") {
		t.Fatalf("doctor --timeout -5s: code %d\n%s%s", code, out, errOut)
	}
}
