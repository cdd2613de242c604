package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// door is a TCP port that is closed until opened; then it forwards every
// connection to target. It stands for a dependency that is down at start
// and comes back. Its port stays bound while it is shut (connections are
// accepted and closed at once), so that no other test's door takes the
// port and forwards this test's connections to another database.
type door struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	isOpen       bool
	conns        []net.Conn
}

// shut closes the door and cuts every connection through it.
func (d *door) shut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.isOpen = false
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// track keeps cs to cut at the next shut; false (and cs closed) when the
// door is shut.
func (d *door) track(cs ...net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.isOpen {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	d.conns = append(d.conns, cs...)
	return true
}

func newDoor(t *testing.T, target string) *door {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &door{addr: ln.Addr().String(), target: target, ln: ln}
	t.Cleanup(func() {
		d.shut()
		ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go d.forward(c)
		}
	}()
	return d
}

// forward carries c to the target while the door is open.
func (d *door) forward(c net.Conn) {
	defer c.Close()
	if !d.track(c) {
		return
	}
	up, err := net.Dial("tcp", d.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !d.track(up) {
		return
	}
	go io.Copy(up, c)
	io.Copy(c, up)
}

func (d *door) open(*testing.T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.isOpen = true
}

// starting runs a server on a listener of the test's and returns its URL
// and what Serve returned (once it has).
func starting(t *testing.T, cfg config.Config) (string, <-chan error, <-chan string) {
	t.Helper()
	return startingWith(t, cfg, nil)
}

// startingWith is starting with mod applied to the server before it serves.
func startingWith(t *testing.T, cfg config.Config, mod func(*server.Server)) (string, <-chan error, <-chan string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exited := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		defer close(exited)
		done <- srv.Serve(ctx, ln, func(a string) { ready <- a })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Error("the server did not stop")
		}
	})
	return "http://" + ln.Addr().String(), done, ready
}

func healthz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitsThenServes checks that a server waiting for a dependency says so,
// then serves once the door opens.
func waitsThenServes(t *testing.T, base string, ready <-chan string, d *door, says string) {
	t.Helper()
	var status int
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, body = healthz(t, base); strings.Contains(body, says) || time.Now().After(deadline) {
			break
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "unhealthy start: wail is starting: waiting for "+says) {
		t.Fatalf("/healthz while the dependency is down: %d %q", status, body)
	}
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, base)
	_, err := admin.ListTables(context.Background(), connect.NewRequest(&wailv1.ListTablesRequest{}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "waiting for "+says) {
		t.Fatalf("the API while the dependency is down: %v", err)
	}
	select {
	case <-ready:
		t.Fatal("ready before the dependency answered")
	default:
	}
	d.open(t)
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("not serving a minute after the dependency came back")
	}
	if status, body := healthz(t, base); status != http.StatusOK {
		t.Fatalf("/healthz once serving: %d %q", status, body)
	}
	ctx := context.Background()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, base)
	if r, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})); err != nil || !r.Msg.Result.Stored {
		t.Fatalf("put once serving: %v", err)
	}
}

// TestStartWaitsForPostgres: a server whose PostgreSQL is down at start
// listens, says unhealthy and what it waits for, and serves once the
// database answers.
func TestStartWaitsForPostgres(t *testing.T) {
	t.Parallel()
	dsn := sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	d := newDoor(t, u.Host)
	u.Host = d.addr
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: u.String(), MaxConns: 4, QueryTimeout: 5 * time.Second}
	base, _, ready := starting(t, cfg)
	waitsThenServes(t, base, ready, d, "the postgres store")
}

// TestStartWaitsForKafka: the same with the Kafka brokers down at start.
func TestStartWaitsForKafka(t *testing.T) {
	t.Parallel()
	brokers := servicetest.KafkaBrokers(t)
	d := newDoor(t, brokers[0])
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Log.Kind = config.LogKafka
	cfg.Log.Kafka.Brokers = []string{d.addr}
	prefix := sqltest.Name("start_") // topics of their own
	cfg.Log.Kafka.IntentTopic, cfg.Log.Kafka.EventTopic = prefix+".intents.{table}", prefix+".events.{table}"
	cfg.Resolver.Group = prefix
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, prefix+".intents.t", prefix+".events.t")
	})
	base, _, ready := starting(t, cfg)
	waitsThenServes(t, base, ready, d, "the Kafka brokers "+d.addr)
}

// TestStartTimeout: with start_timeout set, a dependency that stays down
// ends the start with an error naming it.
func TestStartTimeout(t *testing.T) {
	t.Parallel()
	d := newDoor(t, "")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.StartTimeout = 2 * time.Second
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: "postgres://wail:wail@" + d.addr + "/wail", MaxConns: 1, QueryTimeout: time.Second}
	_, done, _ := starting(t, cfg)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "start_timeout") || !strings.Contains(err.Error(), "the postgres store") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("still waiting long after start_timeout")
	}
}

// TestStartFailsAtOnceOnWhatWaitingCannotFix: a data dir that cannot be
// made ends the start at once, even with a remote store configured.
func TestStartFailsAtOnceOnWhatWaitingCannotFix(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(file, "data")
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: "postgres://wail:wail@127.0.0.1:1/wail", MaxConns: 1, QueryTimeout: time.Second}
	_, done, _ := starting(t, cfg)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "data dir") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiting on an error that waiting cannot fix")
	}
}

// TestStopWhileWaiting: a shutdown while the start waits returns nil.
func TestStopWhileWaiting(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: "postgres://wail:wail@127.0.0.1:1/wail", MaxConns: 1, QueryTimeout: time.Second}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, nil) }()
	for srv.Health().State() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestHealthzUnhealthyFromTheFirstAnswer: from its first answer until the
// API serves, /healthz says unhealthy, so that a client that waits for
// /healthz never gets Unavailable from its first call. It said 200 while
// the start had not begun yet (the bench's vs-debezium harness failed its
// CreateTable so).
func TestHealthzUnhealthyFromTheFirstAnswer(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	hold, release := make(chan struct{}), make(chan struct{})
	base, _, ready := startingWith(t, cfg, func(s *server.Server) {
		server.SetServingHook(s, func() { close(hold); <-release })
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the server's cleanup waits for it to stop
	<-hold
	code, body := healthz(t, base)
	if code == http.StatusOK {
		t.Fatalf("/healthz before the start: %d %s, want unhealthy", code, body)
	}
	if !strings.Contains(body, "wail is starting") {
		t.Fatalf("/healthz before the start says %q, want what the start does", body)
	}
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, base)
	_, err := admin.CreateTable(context.Background(), connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("CreateTable before the start: %v, want Unavailable", err)
	}
	releaseOnce()
	<-ready
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if code, _ := healthz(t, base); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz never said 200")
		}
	}
	if _, err := admin.CreateTable(context.Background(), connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatalf("CreateTable once /healthz says 200: %v", err)
	}
}

// TestHealthzUnhealthyWhileShuttingDown: once the shutdown began, the
// metrics port's /healthz (it answers until the process ends) says
// unhealthy and why, not 200.
func TestHealthzUnhealthyWhileShuttingDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := "http://" + ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Security.MetricsListen = strings.TrimPrefix(metrics, "http://")
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var code int
	var body []byte
	var getErr error
	server.SetShutdownHook(srv, func() { // on the server's goroutine: no t.Fatal
		resp, err := http.Get(metrics + "/healthz")
		if getErr = err; err == nil {
			code = resp.StatusCode
			body, getErr = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { ready <- a }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, _ := healthz(t, metrics); c == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz on the metrics port never said 200 while serving")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server did not stop")
	}
	if getErr != nil {
		t.Fatalf("/healthz on the metrics port during the shutdown: %v", getErr)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Fatalf("/healthz on the metrics port during the shutdown: %d %q, want 503 saying it shuts down", code, body)
	}
}
