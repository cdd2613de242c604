package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// hungShutdownTimeout is the helper's shutdown_timeout.
const hungShutdownTimeout = 2 * time.Second

// serveHungStore is the helper process of TestSIGTERMWithAHungStore: a
// server whose Pebble WAL syncs block for good once it started (a disk that
// stops answering), run until SIGTERM the way `wail serve` runs. It prints
// "listening <addr>" and returns the exit status.
func serveHungStore() int {
	cfg := config.Default()
	cfg.DataDir = os.Getenv("WAIL_TEST_HUNG_STORE")
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = hungShutdownTimeout
	cfg.Tables = []config.Table{{Name: "t"}}
	var hang atomic.Bool
	never := make(chan struct{})
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if hang.Load() && strings.HasSuffix(op.Path, ".log") &&
			(op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			<-never
		}
		return nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := newServer(cfg, logger, seams{storeFS: errorfs.Wrap(pebblevfs.Default, inj)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	hang.Store(true)
	err = srv.Run(ctx, func(addr string) { fmt.Printf("listening %s\n", addr) })
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrFailStop):
		return ExitFailStop
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}

// TestSIGTERMWithAHungStore: a server process whose store hangs (WAL syncs
// never return) with writes stuck in it gets SIGTERM: it exits within
// shutdown_timeout (and a margin for the process itself), and none of the
// stuck writes is acknowledged.
func TestSIGTERMWithAHungStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	// Not parallel: a fork holds the parent's descriptors (and the flock of
	// an open log) until its exec, which could fail another test's reopen.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WAIL_TEST_HUNG_STORE="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		exited <- cmd.Wait()
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-exited:
		t.Fatalf("the helper exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the helper did not listen within 30s")
	}

	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	const writes = 4
	answered := make(chan error, writes)
	for i := range writes {
		go func() {
			_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: fmt.Appendf(nil, "k%d", i)}))
			answered <- err
		}()
	}
	select { // the writes are stuck in the store
	case err := <-answered:
		t.Fatalf("a write returned (%v) although the store's WAL sync hangs", err)
	case <-time.After(500 * time.Millisecond):
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	bound := hungShutdownTimeout + 3*time.Second
	select {
	case err := <-exited:
		t.Logf("exited %v after SIGTERM: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(bound):
		t.Fatalf("no exit within %v of SIGTERM (shutdown_timeout %v)\n%s", bound, hungShutdownTimeout, stderr.String())
	}
	for range writes {
		if err := <-answered; err == nil {
			t.Error("a write stuck in a hung store was acknowledged")
		}
	}
	if !strings.Contains(stderr.String(), "did not close within shutdown_timeout") {
		t.Errorf("stderr does not say what the shutdown waited for:\n%s", stderr.String())
	}
}
