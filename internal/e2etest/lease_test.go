package e2etest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// logged is a process's stderr, kept for the test to read.
type logged struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logged) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	os.Stderr.Write(p)
	return l.buf.Write(p)
}

func (l *logged) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proxyProc is a `wail proxy` process.
type proxyProc struct {
	*child
	stderr *logged
}

// startProxy runs `wail proxy` with args until it listens (true) or exits.
func startProxy(t *testing.T, bin string, args ...string) (*proxyProc, bool) {
	t.Helper()
	p := &proxyProc{stderr: &logged{}}
	var listening bool
	p.child, listening = launchWail(t, bin, p.stderr, append([]string{"proxy", "--data-dir", t.TempDir()}, args...)...)
	return p, listening
}

func (p *proxyProc) put(t *testing.T, table, key string) uint64 {
	t.Helper()
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+p.addr)
	r, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: table, Key: []byte(key), Value: []byte("v")}))
	if err != nil {
		t.Fatal(err)
	}
	return r.Msg.Result.Version
}

// TestProxyIDLease runs `wail proxy` processes sharing PostgreSQL: a second
// one with a live proxy id refuses to start, naming the holder; one with
// another id starts; after the holder is killed, the id is free once its
// lease expires; after a clean stop, at once.
func TestProxyIDLease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin := buildWail(t)
	conf := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(conf, []byte("proxy:\n  lease_ttl: 3s\ntables:\n  - name: leased\n    partitions: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(id string) []string {
		return []string{"--config", conf, "--store", "postgres", "--dsn", dsn, "--proxy-id", id}
	}
	host, _ := os.Hostname()

	first, ok := startProxy(t, bin, as("7")...)
	if !ok {
		t.Fatalf("the first proxy did not start: %s", first.stderr)
	}
	v1 := first.put(t, "leased", "k")

	second, ok := startProxy(t, bin, as("7")...)
	if ok {
		t.Fatal("a second proxy with the live proxy id 7 started")
	}
	err := <-second.done
	want := fmt.Sprintf("proxy id 7 is held by another live process: host %s, pid %d", host, first.cmd.Process.Pid)
	if err == nil || !strings.Contains(second.stderr.String(), want) {
		t.Fatalf("second proxy: exit %v, stderr %q; want it to say %q", err, second.stderr, want)
	}

	other, ok := startProxy(t, bin, as("8")...)
	if !ok {
		t.Fatalf("a proxy with another id did not start: %s", other.stderr)
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	third, ok := startProxy(t, bin, as("7")...)
	if !ok {
		t.Fatalf("proxy id 7 not free after its holder died: %s", third.stderr)
	}
	if !strings.Contains(third.stderr.String(), "waiting to see its lease renewed") {
		t.Errorf("the proxy after a crash did not wait out the lease: %s", third.stderr)
	}
	if v3 := third.put(t, "leased", "k"); v3 <= v1 {
		t.Fatalf("the new holder of proxy id 7 stamped %d, not above the old holder's %d", v3, v1)
	}

	if err := third.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-third.done; err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	fourth, ok := startProxy(t, bin, as("7")...)
	if !ok {
		t.Fatalf("proxy id 7 not free after a clean stop: %s", fourth.stderr)
	}
	if strings.Contains(fourth.stderr.String(), "waiting to see its lease renewed") {
		t.Errorf("a clean stop did not release the lease: %s", fourth.stderr)
	}
}

// TestProxyIDLeaseFrozenHolder: a `wail proxy` frozen (SIGSTOP) past its
// lease while another process took its proxy id writes nothing once it
// is thawed: every write it answers is refused (its lease is no longer
// valid), and it exits at its next renewal, naming the process that took
// the id, while the new holder goes on serving.
func TestProxyIDLeaseFrozenHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	bin := buildWail(t)
	conf := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(conf, []byte("proxy:\n  lease_ttl: 3s\ntables:\n  - name: leased\n    partitions: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", conf, "--store", "postgres", "--dsn", dsn, "--proxy-id", "9"}
	host, _ := os.Hostname()

	frozen, ok := startProxy(t, bin, args...)
	if !ok {
		t.Fatalf("the first proxy did not start: %s", frozen.stderr)
	}
	frozen.put(t, "leased", "k")
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	taker, ok := startProxy(t, bin, args...) // waits out the frozen one's lease, then takes the id
	if !ok {
		_ = frozen.cmd.Process.Signal(syscall.SIGCONT)
		t.Fatalf("proxy id 9 not taken from the frozen holder: %s", taker.stderr)
	}
	taker.put(t, "leased", "k")
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+frozen.addr)
	var exit error
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "leased", Key: []byte("k"), Value: []byte("thawed")}))
		if err == nil {
			t.Fatal("the thawed proxy took a write with the proxy id another process holds")
		}
		select {
		case exit = <-frozen.done:
		default:
		}
		if exit != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := fmt.Sprintf("proxy id 9: this process's lease lapsed and host %s, pid %d took it", host, taker.cmd.Process.Pid)
	if exit == nil || !strings.Contains(frozen.stderr.String(), want) {
		t.Fatalf("the thawed proxy: exit %v, stderr %q; want it to exit saying %q", exit, frozen.stderr, want)
	}
	taker.put(t, "leased", "k")
}
