package e2etest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store"
)

// mountTmpfs mounts a tmpfs of size (e.g. "20m") and returns its path; it
// is unmounted when the test ends. It needs root: elsewhere the test skips
// (CI=true: fails).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		servicetest.Missing(t, "mounting a tmpfs needs root (run the test as root, or in a container that may mount)")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		servicetest.Missing(t, fmt.Sprintf("cannot mount a tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// resizeTmpfs gives a tmpfs more (or less) room: space freed, as an
// operator would.
func resizeTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("resize tmpfs: %v: %s", err, out)
	}
}

const diskFullShutdown = 5 * time.Second

// TestDiskFullTmpfs runs `wail serve` on a real 20 MiB tmpfs and writes
// 8 KiB values to fresh keys until the disk is full:
//
//   - transactional: the intent log fills first; writes fail unavailable,
//     /healthz says unhealthy naming the full disk, and once space returns
//     the process recovers by itself;
//   - independent: writes go to the store even when the log fails, Pebble
//     hits ENOSPC, the process stops taking writes and exits with 74
//     promptly; it is restarted once space returns;
//   - sigterm: SIGTERM while the disk is full finishes within
//     shutdown_timeout; restarted once space returns.
//
// Throughout, a write answered with an error is never readable (keys are
// written once, so any read of it would be of the failed write), and at
// the end the data directory holds the invariants: every acknowledged
// write has its event, no event for a write that is not stored.
func TestDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary on a tmpfs")
	}
	bin := buildWail(t)
	for _, mode := range []string{"transactional", "independent", "sigterm"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			diskFull(t, bin, mode)
		})
	}
}

func diskFull(t *testing.T, bin, mode string) {
	mnt := mountTmpfs(t, "20m")
	data := filepath.Join(mnt, "data")
	failure := "transactional"
	if mode == "independent" {
		failure = "independent"
	}
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, `shutdown_timeout: %s
log:
  segment_bytes: 1048576
tables:
  - name: %s
    partitions: 4
    failure_mode: %s
`, diskFullShutdown, table, failure), 0o644); err != nil {
		t.Fatal(err)
	}
	serve := func() *child { return startWail(t, bin, "serve", "--config", cfgFile, "--data-dir", data) }
	srv := serve()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := "http://" + srv.addr

	w := &onceWriters{}
	w.url.Store(&url)
	full := w.fill(ctx, srv, 2)
	t.Logf("%s: disk full after %d acknowledged writes; first failure: %v", mode, w.acked.Load(), full.firstErr)
	if w.acked.Load() == 0 || full.firstErr == nil {
		t.Fatalf("no write was acknowledged (%d) or none failed (%v)", w.acked.Load(), full.firstErr)
	}

	// Which fills first depends on how Pebble and the log allocate: on
	// transactional tables it is nearly always the log (then writes stop
	// reaching the store); a store that fills first must stop the process.
	switch {
	case full.exited:
		var ee *exec.ExitError
		if !errors.As(full.exitErr, &ee) || ee.ExitCode() != 74 {
			t.Fatalf("exit on a full disk: %v, want status 74 (a storage failure)", full.exitErr)
		}
		// Promptly: within the fail-stop bound (5 s) and a margin.
		if full.exitAfter > diskFullShutdown+5*time.Second {
			t.Errorf("exited %v after the first failed write, want within %v", full.exitAfter, diskFullShutdown+5*time.Second)
		}
		if mode != "independent" {
			t.Logf("%s: the store filled before the log: checked the fail stop instead", mode)
		}
		resizeTmpfs(t, mnt, "60m")
		srv = serve()
	case mode == "independent":
		t.Fatal("the server did not exit after the store's disk filled up")
	case mode == "transactional":
		checkHealthz(t, url, http.StatusServiceUnavailable, "disk is full")
		resizeTmpfs(t, mnt, "60m")
		waitHealthy(t, url, 15*time.Second)
	case mode == "sigterm":
		checkHealthz(t, url, http.StatusServiceUnavailable, "disk is full")
		start := time.Now()
		if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-srv.done:
			t.Logf("SIGTERM on a full disk: exited after %v: %v", time.Since(start).Round(time.Millisecond), err)
		case <-time.After(diskFullShutdown + 5*time.Second):
			t.Fatalf("SIGTERM on a full disk: no exit within shutdown_timeout (%v) and a margin", diskFullShutdown)
		}
		resizeTmpfs(t, mnt, "60m")
		srv = serve()
	}
	again := "http://" + srv.addr // a new variable: a writer may still read the old one through its pointer
	w.url.Store(&again)

	// Space is back: writes work again.
	before := w.acked.Load()
	more := w.fill(ctx, srv, 1, 200)
	if more.firstErr != nil || w.acked.Load()-before != 200 {
		t.Fatalf("after space returned: %d of 200 writes acknowledged, first error %v", w.acked.Load()-before, more.firstErr)
	}
	waitResolvedRemote(t, ctx, again)
	start := time.Now()
	srv.terminate(t)
	if d := time.Since(start); d > diskFullShutdown+5*time.Second {
		t.Errorf("SIGTERM took %v, shutdown_timeout is %v", d, diskFullShutdown)
	}
	if n := w.visibleFailures.Load(); n > 0 {
		t.Errorf("%d writes answered with an error were readable right after", n)
	}
	// A write to an independent table stored without its intent has no
	// event; the invariants hold for every other key.
	checkDataDirExcept(t, ctx, data, &w.remoteWriters, func(key string, row store.Row) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.unlogged[key] == row.Version
	})
}

// onceWriters write each key once (8 KiB values), one mutation per Write
// so that every answer carries its version.
type onceWriters struct {
	remoteWriters
	seq             atomic.Int64
	visibleFailures atomic.Int64
	unlogged        map[string]uint64 // stored without an intent (independent), under mu
}

// fillResult is how a fill ended.
type fillResult struct {
	firstErr  error // the first failed write's error
	exited    bool  // the server exited (exitErr), exitAfter the first failure
	exitErr   error
	exitAfter time.Duration
}

// fill writes with n writers until the disk is full (failures for 2 s
// without a write stored, or the server exits), or, with limit set, until
// limit writes were answered.
func (w *onceWriters) fill(ctx context.Context, srv *child, n int, limit ...int) fillResult {
	var (
		mu       sync.Mutex
		res      fillResult
		firstAt  time.Time
		progress atomic.Int64 // unix nanos of the last write stored
		answered atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	progress.Store(time.Now().UnixNano())
	value := strings.Repeat("v", 8<<10)
	for range n {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				if len(limit) > 0 && answered.Load() >= int64(limit[0]) {
					return
				}
				key := fmt.Sprintf("once-%d", w.seq.Add(1))
				pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, *w.url.Load())
				a := attempt{Write: Write{Key: key, Value: key + "#" + value}}
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := pc.Write(rctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
					{Table: table, Key: []byte(key), Value: []byte(a.Value)},
				}}))
				cancel()
				var failed error
				if err == nil {
					r := resp.Msg.Results[0]
					a.answered, a.Version = true, r.Version
					a.Acked = r.Error == nil && r.IntentLogged
					switch {
					case a.Acked:
						w.acked.Add(1)
						progress.Store(time.Now().UnixNano())
					case r.Error != nil:
						failed = fmt.Errorf("%s: %s", r.Error.Code, r.Error.Message)
					default: // independent: stored, intent not logged
						w.mu.Lock()
						if w.unlogged == nil {
							w.unlogged = map[string]uint64{}
						}
						w.unlogged[key] = r.Version
						w.mu.Unlock()
						progress.Store(time.Now().UnixNano())
					}
					answered.Add(1)
				} else {
					failed = err
				}
				w.mu.Lock()
				w.attempts = append(w.attempts, a)
				w.mu.Unlock()
				if failed == nil {
					continue
				}
				mu.Lock()
				if res.firstErr == nil {
					res.firstErr, firstAt = failed, time.Now()
				}
				mu.Unlock()
				if a.answered && !a.Acked {
					// A failed write must not be readable.
					g, gerr := pc.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: table, Key: []byte(key)}))
					if gerr == nil && g.Msg.Found {
						w.visibleFailures.Add(1)
					}
				}
				if time.Since(time.Unix(0, progress.Load())) > 2*time.Second {
					stop.Store(true)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	exited, quit := make(chan struct{}), make(chan struct{})
	defer close(quit)
	go func() {
		defer close(exited)
		select {
		case err := <-srv.done:
			srv.done <- err // for later waiters
			mu.Lock()
			res.exited, res.exitErr = true, err
			if !firstAt.IsZero() {
				res.exitAfter = time.Since(firstAt)
			}
			mu.Unlock()
			stop.Store(true)
		case <-quit:
		case <-ctx.Done():
		}
	}()
	wg.Wait()
	if res.firstErr != nil && !res.exited && len(limit) == 0 {
		// The server may be on its way out (fail stop): give it the bound.
		select {
		case <-exited:
		case <-time.After(diskFullShutdown + 2*time.Second):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return res
}

// checkHealthz expects /healthz to answer code with want in its body.
func checkHealthz(t *testing.T, url string, code int, want string) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code || !strings.Contains(string(body), want) {
		t.Fatalf("/healthz: %d %s, want %d with %q", resp.StatusCode, body, code, want)
	}
}

// waitHealthy waits until /healthz answers 200.
func waitHealthy(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz still %d after %v: %s", resp.StatusCode, within, body)
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
