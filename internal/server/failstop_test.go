package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// storeFault fails Pebble's WAL writes and syncs with err while on.
type storeFault struct {
	on  atomic.Bool
	err error
}

func (f *storeFault) String() string { return "store fault" }

func (f *storeFault) MaybeError(op errorfs.Op) error {
	if !f.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return f.err
	}
	return nil
}

// running is an in-process server under test.
type running struct {
	srv      *Server
	producer wailv1connect.ProducerServiceClient
	url      string
	done     chan error
	stop     context.CancelFunc
}

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Tables = []config.Table{{Name: "t"}}
	return cfg
}

func runServer(t *testing.T, cfg config.Config, sm seams) *running {
	t.Helper()
	return runServerLogged(t, cfg, sm, slog.New(slog.DiscardHandler))
}

// runServerLogged is runServer with the server logging to logger.
func runServerLogged(t *testing.T, cfg config.Config, sm seams, logger *slog.Logger) *running {
	t.Helper()
	srv, err := newServer(cfg, logger, sm)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, done: make(chan error, 1), stop: cancel}
	addr := make(chan string, 1)
	go func() { r.done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case err := <-r.done:
		t.Fatalf("server: %v", err)
	}
	r.producer = wailv1connect.NewProducerServiceClient(http.DefaultClient, r.url)
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
			t.Error("the server did not stop within shutdown_timeout")
		}
	})
	return r
}

func (r *running) put(ctx context.Context, key, value string) (*wailv1.WriteResult, error) {
	resp, err := r.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(key), Value: []byte(value)}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Result, nil
}

// exited waits for Run to return within shutdown_timeout (and a margin).
func (r *running) exited(t *testing.T, cfg config.Config) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("the server did not stop by itself after the storage failure")
		return nil
	}
}

// condition returns the health condition of component.
func condition(h *health.Registry, component string) (health.Condition, bool) {
	for _, c := range h.Report().Conditions {
		if c.Component == component {
			return c, true
		}
	}
	return health.Condition{}, false
}

// TestStoreFailureStopsTheProcess: the store's WAL fails with ENOSPC. The
// write is answered unavailable, is never readable, the health turns
// unhealthy with a reason and an action, and Run returns ErrFailStop
// within shutdown_timeout. After a machine crash and a restart, the
// acknowledged write is there and the failed one is not.
func TestStoreFailureStopsTheProcess(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	mem := pebblevfs.NewCrashableMem()
	fault := &storeFault{err: syscall.ENOSPC}
	r := runServer(t, cfg, seams{storeFS: errorfs.Wrap(mem, fault)})
	ctx := t.Context()
	good, err := r.put(ctx, "k", "durable")
	if err != nil {
		t.Fatal(err)
	}
	fault.on.Store(true)
	_, err = r.put(ctx, "k", "lost")
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("write on a failing store: %v, want unavailable", err)
	}
	// The server is stopping; if it still answers, it must not serve the
	// failed write.
	if got, err := r.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")})); err == nil &&
		got.Msg.Found && got.Msg.Version != good.Version {
		t.Fatalf("Get after the failure returned version %d, the acknowledged one is %d", got.Msg.Version, good.Version)
	}
	runErr := r.exited(t, cfg)
	if !errors.Is(runErr, ErrFailStop) || !strings.Contains(runErr.Error(), "no space left on device") {
		t.Fatalf("Run returned %v, want ErrFailStop naming the full disk", runErr)
	}
	rep := r.srv.Health().Report()
	c, ok := condition(r.srv.Health(), "store")
	if rep.State != health.Unhealthy || !ok || !strings.Contains(c.Reason, "no space left on device") ||
		!strings.Contains(c.Action, "free space") || !strings.Contains(c.Action, "74") {
		t.Fatalf("health after the failure: %+v", rep)
	}

	// A machine crash keeps what was synced; a restart recovers.
	fault.on.Store(false)
	r2 := runServer(t, cfg, seams{storeFS: mem.CrashClone(pebblevfs.CrashCloneCfg{})})
	got, err := r2.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")}))
	if err != nil || !got.Msg.Found || got.Msg.Version != good.Version || string(got.Msg.Value) != "durable" {
		t.Fatalf("after the restart: %+v, %v; want the acknowledged version %d", got, err, good.Version)
	}
	if _, err := r2.put(ctx, "k", "again"); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	if s := r2.srv.Health().State(); s != health.OK {
		t.Fatalf("health after the restart: %v", r2.srv.Health().Report())
	}
}

// TestWritesRefusedWhileStopping: once a fail stop began, writes are
// answered unavailable naming the failure, before they touch the log.
func TestWritesRefusedWhileStopping(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler), seams{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	pc := wailv1connect.NewProducerServiceClient(hs.Client(), hs.URL)
	ctx := t.Context()
	if _, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k")})); err != nil {
		t.Fatal(err)
	}
	srv.failStop("store", errors.New("injected: write 000004.log: input/output error"))
	_, err = pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k2")}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "storage failure") ||
		!strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("write while stopping: %v, want unavailable naming the failure", err)
	}
	_, err = pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k3")}}}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("batch write while stopping: %v, want unavailable", err)
	}
	if _, err := pc.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")})); err != nil {
		t.Fatalf("a read is not a write: %v", err)
	}
	if c, ok := condition(srv.Health(), "store"); !ok || c.State != health.Unhealthy || !strings.Contains(c.Action, "dmesg") {
		t.Fatalf("health: %+v", srv.Health().Report())
	}
	select {
	case cause := <-srv.failed:
		if !strings.Contains(cause.Error(), "store: injected") {
			t.Fatalf("cause %v", cause)
		}
	default:
		t.Fatal("Run was not told to stop")
	}
}

// runWithLogFS runs a server whose embedded log is on an ErrorFS, after one
// acknowledged write.
func runWithLogFS(t *testing.T) (config.Config, *running, *vfs.ErrorFS) {
	t.Helper()
	cfg := testConfig(t)
	efs := vfs.NewErrorFS(nil)
	r := runServer(t, cfg, seams{logFS: efs})
	if _, err := r.put(t.Context(), "k", "v1"); err != nil {
		t.Fatal(err)
	}
	return cfg, r, efs
}

// TestLogDiskFullRecovers: the embedded log's disk fills up: writes fail
// unavailable, the health is unhealthy naming the full disk, and once space
// returns it clears and writes work again, without a restart.
func TestLogDiskFullRecovers(t *testing.T) {
	t.Parallel()
	_, r, efs := runWithLogFS(t)
	ctx := t.Context()
	efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC})
	_, err := r.put(ctx, "k", "v2")
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("write on a full log disk: %v, want unavailable", err)
	}
	c, ok := condition(r.srv.Health(), "log")
	if !ok || c.State != health.Unhealthy || !strings.Contains(c.Reason, "disk is full") || !strings.Contains(c.Action, "free space") {
		t.Fatalf("health on a full log disk: %+v", r.srv.Health().Report())
	}
	efs.Clear()
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.Health().State() != health.OK && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := r.srv.Health().State(); s != health.OK {
		t.Fatalf("health once space returned: %+v", r.srv.Health().Report())
	}
	if _, err := r.put(ctx, "k", "v3"); err != nil {
		t.Fatalf("write once space returned: %v", err)
	}
	select {
	case err := <-r.done:
		t.Fatalf("the server stopped on a full log disk: %v", err)
	default:
	}
}

// TestLogReadErrorDegrades: the log's disk fails reads: the resolver's
// read of the intents fails, the health turns degraded naming the failed
// read and the disk to check, the process does not stop (a restart does
// not mend a disk, and appends work), and once the disk reads again the
// condition clears by itself.
func TestLogReadErrorDegrades(t *testing.T) {
	t.Parallel()
	_, r, efs := runWithLogFS(t)
	ctx := t.Context()
	efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Err: syscall.EIO})
	if _, err := r.put(ctx, "k", "v2"); err != nil {
		t.Fatalf("write while the log's reads fail: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	c, ok := condition(r.srv.Health(), "log")
	for !ok && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		c, ok = condition(r.srv.Health(), "log")
	}
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, "input/output error") || !strings.Contains(c.Action, "dmesg") {
		t.Fatalf("health while the log's reads fail: %+v", r.srv.Health().Report())
	}
	efs.Clear()
	for ok && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
		_, ok = condition(r.srv.Health(), "log")
	}
	if ok {
		t.Fatalf("the log's condition stays once the disk reads again: %+v", r.srv.Health().Report())
	}
	select {
	case err := <-r.done:
		t.Fatalf("the server stopped on a failed log read: %v", err)
	default:
	}
}

// TestLogCorruptReadDegrades: the resolver's read of the intents finds
// damaged bytes (bit rot or a flaky controller flips bits under the
// checksum): the health turns degraded naming the damage and `wail log
// repair`, the process does not stop (the damage is at rest: a restart
// finds it again, and appends work), and once the bytes read fine again
// the condition clears by itself.
func TestLogCorruptReadDegrades(t *testing.T) {
	t.Parallel()
	cfg, r, efs := runWithLogFS(t)
	ctx := t.Context()
	efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Flip: true})
	if _, err := r.put(ctx, "k", "v2"); err != nil {
		t.Fatalf("write while the log's reads find damage: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	c, ok := condition(r.srv.Health(), "log")
	for !ok && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		c, ok = condition(r.srv.Health(), "log")
	}
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, "corrupt log data") ||
		!strings.Contains(c.Reason, ".log at position") || !strings.Contains(c.Action, "wail log repair "+cfg.DataDir) {
		t.Fatalf("health while the log's reads find damage: %+v", r.srv.Health().Report())
	}
	efs.Clear()
	for ok && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
		_, ok = condition(r.srv.Health(), "log")
	}
	if ok {
		t.Fatalf("the log's condition stays once the data reads fine again: %+v", r.srv.Health().Report())
	}
	select {
	case err := <-r.done:
		t.Fatalf("the server stopped on damaged log data: %v", err)
	default:
	}
}

// TestLogOffsetsReadErrorDegrades: the log's disk fails the read of the
// resolvers' committed offsets (their group's offsets file): the resolver
// cannot start, the health turns degraded naming the group and the file,
// the process does not stop, and once the disk reads again the condition
// clears by itself.
func TestLogOffsetsReadErrorDegrades(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	efs := vfs.NewErrorFS(nil)
	efs.Inject(vfs.Fault{Ops: vfs.OpOpen | vfs.OpRead, Path: cfg.Resolver.Group, Err: syscall.EIO})
	r := runServer(t, cfg, seams{logFS: efs})
	deadline := time.Now().Add(10 * time.Second)
	c, ok := condition(r.srv.Health(), "log")
	for !ok && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		c, ok = condition(r.srv.Health(), "log")
	}
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, "group "+cfg.Resolver.Group) ||
		!strings.Contains(c.Reason, "offsets/"+cfg.Resolver.Group+": input/output error") || !strings.Contains(c.Action, "dmesg") {
		t.Fatalf("health while the group's offsets cannot be read: %+v", r.srv.Health().Report())
	}
	efs.Clear()
	for ok && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
		_, ok = condition(r.srv.Health(), "log")
	}
	if ok {
		t.Fatalf("the log's condition stays once the offsets read again: %+v", r.srv.Health().Report())
	}
	if _, err := r.put(t.Context(), "k", "v"); err != nil {
		t.Fatalf("write once the offsets read again: %v", err)
	}
	select {
	case err := <-r.done:
		t.Fatalf("the server stopped on a failed read of committed offsets: %v", err)
	default:
	}
}

// TestLogOpenIOErrorSaysWhatToRun: the log's disk fails a read at start:
// the start fails (status 1, not a fail stop: there is nothing to drain),
// and the error says what to check and what to restore.
func TestLogOpenIOErrorSaysWhatToRun(t *testing.T) {
	t.Parallel()
	cfg, r, _ := runWithLogFS(t)
	r.stop()
	r.done <- <-r.done // stopped; leave it for the cleanup
	efs := vfs.NewErrorFS(nil)
	efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Err: syscall.EIO})
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler), seams{logFS: efs})
	if err == nil {
		err = srv.Run(t.Context(), func(string) {})
	}
	if err == nil || errors.Is(err, ErrFailStop) || !errors.Is(err, intentlog.ErrStorage) {
		t.Fatalf("start with a log disk failing reads: %v; want ErrStorage, no fail stop", err)
	}
	for _, want := range []string{"input/output error", "dmesg", "restore " + cfg.DataDir + "/log from a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("start with a log disk failing reads: %v; want it to say %q", err, want)
		}
	}
}

// TestLogStorageErrorStopsTheProcess: an fsync of the log fails: the
// partition is broken until a restart, so the process fails stop.
func TestLogStorageErrorStopsTheProcess(t *testing.T) {
	t.Parallel()
	cfg, r, efs := runWithLogFS(t)
	ctx := t.Context()
	efs.Inject(vfs.Fault{Ops: vfs.OpSync, Err: syscall.EIO})
	// The resolver's own fsyncs (events, offsets) may break the log first;
	// then the server is already stopping and the write finds it gone.
	if _, err := r.put(ctx, "k", "v2"); err == nil {
		t.Fatal("a write with a failing log fsync was acknowledged")
	}
	runErr := r.exited(t, cfg)
	if !errors.Is(runErr, ErrFailStop) || !errors.Is(runErr, intentlog.ErrStorage) {
		t.Fatalf("Run returned %v, want ErrFailStop wrapping the log's ErrStorage", runErr)
	}
	if c, ok := condition(r.srv.Health(), "log"); !ok || c.State != health.Unhealthy || !strings.Contains(c.Action, "dmesg") {
		t.Fatalf("health: %+v", r.srv.Health().Report())
	}
}

// The helper process: a `wail serve` whose store's WAL sync hangs (a disk
// that stops answering), for TestSIGTERMWithAHungStore.
func TestMain(m *testing.M) {
	if os.Getenv("WAIL_TEST_HUNG_STORE") != "" {
		os.Exit(serveHungStore())
	}
	os.Exit(m.Run())
}
