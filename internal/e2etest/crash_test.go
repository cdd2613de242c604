package e2etest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
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
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// wailBuild is the wail binary the tests run, built once per test binary
// (each test building its own linked one at a time more, in parallel, and
// filled a small disk) and removed by TestMain.
var wailBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildWail returns the wail binary, building it at the first call.
func buildWail(t *testing.T) string {
	t.Helper()
	wailBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "wail-e2e-*")
		if err != nil {
			wailBuild.err = err
			return
		}
		wailBuild.dir = dir
		bin := filepath.Join(dir, "wail")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/wail-cdc/wail/cmd/wail").CombinedOutput(); err != nil {
			wailBuild.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		wailBuild.bin = bin
	})
	if wailBuild.err != nil {
		t.Fatal(wailBuild.err)
	}
	return wailBuild.bin
}

// TestMain removes the wail binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if wailBuild.dir != "" {
		os.RemoveAll(wailBuild.dir)
	}
	os.Exit(code)
}

// child is a `wail serve` process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

func startServe(t *testing.T, bin, dir string) *child {
	t.Helper()
	return startWail(t, bin, "serve", "--data-dir", dir)
}

// startWail runs a wail command that listens (serve, proxy, resolve) on a
// free port and waits until it does.
func startWail(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c, listening := launchWail(t, bin, os.Stderr, args...)
	if !listening {
		t.Fatalf("wail %s exited before listening: %v", args[0], <-c.done)
	}
	return c
}

// launchWail runs a wail command that listens, with its stderr to stderr,
// until it listens (true) or exits (false; its exit is then on c.done).
func launchWail(t *testing.T, bin string, stderr io.Writer, args ...string) (c *child, listening bool) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--listen", "127.0.0.1:0")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	c = &child{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "wail" && f[1] == "listening" {
				addr <- strings.TrimPrefix(strings.TrimPrefix(f[3], "http://"), "https://")
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.addr = <-addr:
		return c, true
	case err := <-c.done:
		c.done <- err
		return c, false
	case <-time.After(60 * time.Second):
		t.Fatalf("wail %s neither listened nor exited within 60s", args[0])
	}
	return nil, false
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

func (c *child) terminate(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("wail serve did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("wail serve did not exit within 60s of SIGTERM")
	}
}

// attempt is a write sent to a server that may have died: its outcome is
// known only if the answer came back.
type attempt struct {
	Write
	answered bool
}

type remoteWriters struct {
	table string // default: the package's table
	// producer returns the client of a server's URL (default: plain HTTP,
	// no credentials).
	producer func(url string) wailv1connect.ProducerServiceClient
	url      atomic.Pointer[string]
	mu       sync.Mutex
	attempts []attempt
	acked    atomic.Int64
	seen     int64 // acked at the last progress check
}

// progress waits until writes were acknowledged since its last call, so a
// kill or hand-over that follows happens with writes in flight.
func (w *remoteWriters) progress(t *testing.T, what string) {
	t.Helper()
	waitFor(t, "writes acknowledged "+what, func() bool { return w.acked.Load() > w.seen })
	w.seen = w.acked.Load()
}

func (w *remoteWriters) run(ctx context.Context, id int64, stop *atomic.Bool) {
	rng := rand.New(rand.NewSource(id))
	for seq := 0; !stop.Load(); {
		var pc wailv1connect.ProducerServiceClient
		if w.producer != nil {
			pc = w.producer(*w.url.Load())
		} else {
			pc = wailv1connect.NewProducerServiceClient(http.DefaultClient, *w.url.Load())
		}
		n := 1 + rng.Intn(10)
		req := &wailv1.WriteRequest{}
		batch := make([]attempt, n)
		for i := range batch {
			seq++
			key := fmt.Sprintf("hot-%d", rng.Intn(6))
			if rng.Intn(3) == 0 {
				key = fmt.Sprintf("cold-%d", rng.Intn(5000))
			}
			m := &wailv1.Mutation{Table: w.tableName(), Key: []byte(key), Value: []byte(fmt.Sprintf("%s#w%d#%d", key, id, seq))}
			if rng.Intn(8) == 0 {
				m.Op, m.Value = wailv1.Op_OP_DELETE, nil
			}
			req.Mutations = append(req.Mutations, m)
			batch[i].Write = Write{Key: key, Value: string(m.Value), Delete: m.Op == wailv1.Op_OP_DELETE}
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := pc.Write(rctx, connect.NewRequest(req))
		cancel()
		if err == nil {
			for i, r := range resp.Msg.Results {
				batch[i].answered = true
				batch[i].Version = r.Version
				batch[i].Acked = r.Error == nil && r.IntentLogged
				if batch[i].Acked {
					w.acked.Add(1)
				}
			}
		} else {
			time.Sleep(20 * time.Millisecond) // the server is down or restarting
		}
		w.mu.Lock()
		w.attempts = append(w.attempts, batch...)
		w.mu.Unlock()
	}
}

// start starts n writers sending to url (w.url: point it elsewhere to
// move them) and returns what stops them and waits for them to end.
func (w *remoteWriters) start(ctx context.Context, url string, n int64) (stop func()) {
	w.url.Store(&url)
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for id := int64(1); id <= n; id++ {
		wg.Go(func() { w.run(ctx, id, &stopped) })
	}
	return func() {
		stopped.Store(true)
		wg.Wait()
	}
}

func (w *remoteWriters) tableName() string {
	if w.table == "" {
		return table
	}
	return w.table
}

// keys returns every key written and the writes.
func (w *remoteWriters) keys() ([]string, []Write) {
	seen := map[string]bool{}
	var keys []string
	var writes []Write
	for _, a := range w.attempts {
		if !seen[a.Key] {
			seen[a.Key] = true
			keys = append(keys, a.Key)
		}
		writes = append(writes, a.Write)
	}
	return keys, writes
}

// oracle accepts an event whose value was written by an attempt with the
// event's version, or by an attempt whose answer never came back (it was in
// flight when the server was killed).
func (w *remoteWriters) oracle() Stored {
	type kv struct{ key, value string }
	byValue := map[kv][]attempt{}
	for _, a := range w.attempts {
		byValue[kv{a.Key, a.Value}] = append(byValue[kv{a.Key, a.Value}], a)
	}
	return func(e *intent.Event) error {
		as := byValue[kv{string(e.Key), string(e.Value)}]
		if len(as) == 0 {
			return fmt.Errorf("no write of key %q had value %q", e.Key, e.Value)
		}
		for _, a := range as {
			if a.Delete != (e.Op == intent.Delete) {
				continue
			}
			if !a.answered || a.Version == e.Version {
				return nil
			}
		}
		return errors.New("no write with this value was stamped with this version")
	}
}

// serveWithTable builds wail and starts `wail serve` as a child process on
// a new data dir, with the table (4 partitions, a 2s visibility window).
func serveWithTable(ctx context.Context, t *testing.T) (bin, dir string, srv *child) {
	t.Helper()
	bin = buildWail(t)
	dir = t.TempDir()
	srv = startServe(t, bin, dir)
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+srv.addr)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: table, Partitions: 4, VisibilityWindowMs: 2000,
	})); err != nil {
		t.Fatal(err)
	}
	return bin, dir, srv
}

// TestInvariantsAcrossKill9 runs `wail serve` as a child process, kills it
// with SIGKILL mid-stream, restarts it on the same data dir, and checks the
// invariants on what the data dir holds once writes stopped.
func TestInvariantsAcrossKill9(t *testing.T) {
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
	srv = w.killTwice(ctx, t, srv, "http://", func() *child { return startServe(t, bin, dir) })
	waitResolvedRemote(t, ctx, "http://"+srv.addr)
	srv.terminate(t)
	t.Logf("%d writes acknowledged, %d attempted", w.acked.Load(), len(w.attempts))
	checkDataDir(t, ctx, dir, w)
}

// killTwice runs three writers while it kills srv with SIGKILL mid-stream
// and restarts it (restart) twice, then stops the writers once writes were
// acknowledged after the last restart; it returns the server running.
func (w *remoteWriters) killTwice(ctx context.Context, t *testing.T, srv *child, scheme string, restart func() *child) *child {
	t.Helper()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for id := int64(1); id <= 3; id++ {
		wg.Go(func() { w.run(ctx, id, &stop) })
	}
	for round := 0; round < 2; round++ {
		time.Sleep(time.Second)
		w.progress(t, fmt.Sprintf("before kill %d", round+1))
		before := w.acked.Load()
		srv.kill(t) // SIGKILL mid-stream
		srv = restart()
		url := scheme + srv.addr
		w.url.Store(&url)
		t.Logf("killed with %d writes acknowledged; restarted at %s", before, url)
	}
	time.Sleep(time.Second)
	w.progress(t, "after the last restart")
	stop.Store(true)
	wg.Wait()
	return srv
}

func waitResolvedRemote(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	waitResolvedBy(t, ctx, wailv1connect.NewAdminServiceClient(http.DefaultClient, url))
}

// waitResolvedBy waits until the resolver committed every intent of the
// table, asking admin.
func waitResolvedBy(t *testing.T, ctx context.Context, admin wailv1connect.AdminServiceClient) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: table}))
		if err != nil {
			t.Fatal(err)
		}
		behind := ""
		for p, end := range d.Msg.IntentEndOffsets {
			if c := d.Msg.CommittedOffsets[p]; c < end {
				behind += fmt.Sprintf(" p%d:%d/%d", p, c, end)
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolver did not catch up:%s", behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkDataDir(t *testing.T, ctx context.Context, dir string, w *remoteWriters) {
	t.Helper()
	checkDataDirExcept(t, ctx, dir, w, nil)
}

// checkDataDirExcept is checkDataDir leaving out of invariant 4 the keys
// whose stored row skip accepts (e.g. a write to an independent table that
// was stored without its intent: no event is promised for it).
func checkDataDirExcept(t *testing.T, ctx context.Context, dir string, w *remoteWriters, skip func(key string, row store.Row) bool) {
	t.Helper()
	log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tb := catalog.Table{Name: table, Partitions: 4}
	keys, writes := w.keys()
	final := finalState(t, ctx, st, table, keys)
	for k, row := range final {
		if skip != nil && skip(k, row) {
			delete(final, k)
		}
	}
	Check(t, writes, readEvents(t, ctx, log, tb), w.oracle(), final, nil)
}
