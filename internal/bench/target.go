package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// Backend records what the bench ran against.
type Backend struct {
	Target     string `json:"target"` // "in-process" or the address
	Addr       string `json:"addr"`
	IntentLog  string `json:"intent_log"`
	EventBus   string `json:"event_bus"`
	Store      string `json:"store"`
	Fsync      string `json:"fsync"` // "on", "off" or "unknown"
	Partitions int32  `json:"partitions"`
	Tables     int    `json:"tables"`
	DataDir    string `json:"data_dir"`
	// SharesCPU says what else ran on the cores the target used.
	SharesCPU string `json:"shares_cpu"`
}

func (b Backend) String() string {
	return fmt.Sprintf("%s server at %s: intent log %s, event bus %s, store %s, fsync %s, %d table(s) x %d partitions",
		b.Target, b.Addr, b.IntentLog, b.EventBus, b.Store, b.Fsync, b.Tables, b.Partitions)
}

// target is the server under test and its clients.
type target struct {
	backend  Backend
	base     string
	producer wailv1connect.ProducerServiceClient // on the writers' connections
	// batcher, in --producer mode, carries the measured writes.
	batcher *client.Producer
	admin   wailv1connect.AdminServiceClient
	events  *connect.Client[wailv1.SubscribeRequest, rawMessage] // Subscribe (events.go)
	control *http.Client                                         // admin, events, /metrics
	stop    func() error
}

// openTarget starts the in-process server, or dials o.Addr.
func openTarget(ctx context.Context, o *Options) (*target, error) {
	if o.Addr != "" {
		t, err := newTarget(o.Addr, o)
		if err != nil {
			return nil, err
		}
		t.backend = Backend{Target: "remote", Addr: t.base, IntentLog: "unknown", EventBus: "unknown", Store: "unknown",
			Fsync: "unknown", SharesCPU: "unknown (remote server); the load generator runs on this machine"}
		t.stop = func() error { return nil }
		return t, nil
	}
	return startInProcess(ctx, o)
}

// newTarget dials addr with o.Conn's TLS and token: the writers on up to
// o.connections() connections of their own, the rest on a few.
func newTarget(addr string, o *Options) (*target, error) {
	var opts []connect.ClientOption
	if !o.AcceptGzip {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil)) // no gzip: identity answers
	}
	conn := o.Conn
	conn.Addr, conn.ConnectOptions = addr, opts
	control, err := client.Dial(conn)
	if err != nil {
		return nil, err
	}
	conn.MaxConns, conn.DisableCompression = o.connections(), true
	writers, err := client.Dial(conn)
	if err != nil {
		return nil, err
	}
	t := &target{
		base:     control.URL,
		producer: writers.Producer,
		admin:    control.Admin,
		events:   newEventStreams(control.HTTP, control.URL, opts),
		control:  control.HTTP,
	}
	if o.Producer {
		conn.MaxConns = 0
		if t.batcher, err = client.NewProducer(conn, client.ProducerConfig{DeliveryTimeout: o.RequestTimeout}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// closeBatcher flushes the producer of --producer mode.
func (t *target) closeBatcher() error {
	if t.batcher == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return t.batcher.Close(ctx)
}

// startInProcess runs a server with the default configuration on a
// temporary data dir (removed at stop) or o.DataDir.
func startInProcess(ctx context.Context, o *Options) (*target, error) {
	dir, cleanup := o.DataDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "wail-bench-*")
		if err != nil {
			return nil, err
		}
		dir, cleanup = tmp, func() { _ = os.RemoveAll(tmp) }
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.ShutdownTimeout = dir, "127.0.0.1:0", 30*time.Second
	cfg.Log.NoSync, cfg.Store.NoSync = o.NoSync, o.NoSync
	cfg.Log.SyncFilesystem = o.SyncFilesystem
	// The load generator is one client address with a connection per
	// writer (--concurrency): as many as the server takes.
	cfg.API.MaxConnectionsPerClient = cfg.API.MaxConnections
	if o.Partitions > 0 {
		cfg.Defaults.Partitions = o.Partitions
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(cfg, logger)
	if err != nil {
		cleanup()
		return nil, err
	}
	addr, stop, err := runServer(ctx, srv)
	if err != nil {
		cleanup()
		return nil, err
	}
	t, err := newTarget("http://"+addr, o)
	if err != nil {
		_ = stop()
		cleanup()
		return nil, err
	}
	fsync := "on"
	switch {
	case o.NoSync:
		fsync = "off"
	case o.SyncFilesystem:
		fsync = "on, log syncfs rounds"
	}
	t.backend = Backend{Target: "in-process", Addr: t.base, IntentLog: "embedded", EventBus: "embedded",
		Store: cfg.Store.Kind, Fsync: fsync, DataDir: dir,
		SharesCPU: "the in-process server shares this process, and so the machine's cores, with the load generator"}
	t.stop = func() error { defer cleanup(); return stop() }
	return t, nil
}

// runServer runs srv until stop is called and returns the address it
// listens on.
func runServer(ctx context.Context, srv *server.Server) (addr string, stop func() error, err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, func(a string) { ready <- a }) }()
	select {
	case a := <-ready:
		return a, func() error {
			cancel()
			if err := <-done; err != nil {
				return fmt.Errorf("server shutdown: %w", err)
			}
			return nil
		}, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("server stopped before it was ready")
		}
		return "", nil, err
	}
}

// tableNames are the bench tables: bench_0, bench_1, ...
func tableNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench_%d", i)
	}
	return out
}

// createTables creates the bench tables (an existing one is reused as it
// is) and returns their partition count (of the first one).
func (t *target) createTables(ctx context.Context, tables []string, partitions int32) (int32, error) {
	var parts int32
	for _, name := range tables {
		resp, err := t.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
			Name: name, FailureMode: wailv1.FailureMode_FAILURE_MODE_TRANSACTIONAL, Partitions: partitions}))
		var tbl *wailv1.Table
		switch {
		case err == nil:
			tbl = resp.Msg.GetTable()
		case connect.CodeOf(err) == connect.CodeAlreadyExists:
			d, derr := t.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: name}))
			if derr != nil {
				return 0, fmt.Errorf("describe table %s: %w", name, derr)
			}
			tbl = d.Msg.GetTable()
		default:
			return 0, fmt.Errorf("create table %s: %w", name, err)
		}
		if parts == 0 {
			parts = tbl.GetPartitions()
		}
	}
	return parts, nil
}
