package e2etest

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestInvariantsAcrossSIGTERM runs `wail serve` as a child process and
// stops it while writes stream in: once with SIGTERM (it must exit 0
// within shutdown_timeout), once with two SIGTERMs in a row (the second
// kills it: an abrupt stop, as SIGKILL). Each time it restarts on the same
// data dir; the invariants hold on what the data dir holds once writes
// stopped: every acknowledged write has its event.
func TestInvariantsAcrossSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, dir, srv := serveWithTable(ctx, t)
	url := "http://" + srv.addr
	w := &remoteWriters{}
	w.url.Store(&url)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for id := int64(1); id <= 3; id++ {
		wg.Go(func() { w.run(ctx, id, &stop) })
	}
	for _, signals := range []int{1, 2} {
		time.Sleep(time.Second)
		w.progress(t, "before the stop")
		start := time.Now()
		for range signals {
			// The second may come after the process exited.
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
		}
		select {
		case err := <-srv.done:
			if signals == 1 && err != nil {
				t.Fatalf("wail serve did not exit cleanly on SIGTERM with writes streaming in: %v", err)
			}
			t.Logf("%d SIGTERM: exited after %v: %v", signals, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(35 * time.Second): // shutdown_timeout 30s and a margin
			t.Fatalf("wail serve did not exit within shutdown_timeout of %d SIGTERM", signals)
		}
		srv = startServe(t, bin, dir)
		url := "http://" + srv.addr
		w.url.Store(&url)
	}
	time.Sleep(time.Second)
	w.progress(t, "after the last restart")
	stop.Store(true)
	wg.Wait()
	waitResolvedRemote(t, ctx, "http://"+srv.addr)
	srv.terminate(t)
	t.Logf("%d writes acknowledged, %d attempted", w.acked.Load(), len(w.attempts))
	checkDataDir(t, ctx, dir, w)
}
