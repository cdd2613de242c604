// Package cassandratest finds the Cassandra test cluster that
// scripts/cassandra.sh runs (skipping, or failing under CI, when it is not
// there, as package servicetest decides), gives each test a fresh keyspace
// that is dropped when it ends, and drives the cluster's nodes for fault
// tests: kill and start (a crash and a restart), pause and resume
// (SIGSTOP/SIGCONT).
package cassandratest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/servicetest"
)

// Environment variables (scripts/cassandra.sh env prints them).
const (
	HostsEnv = "WAIL_TEST_CASSANDRA_HOSTS"
	DCEnv    = "WAIL_TEST_CASSANDRA_DC"
)

// Hosts returns the addresses of the test cluster's nodes (node N is
// Hosts()[N-1]): $WAIL_TEST_CASSANDRA_HOSTS, or scripts/cassandra.sh's
// 127.0.0.1-3. When the first does not accept connections, the test is
// skipped (failed under CI=true).
func Hosts(t testing.TB) []string {
	t.Helper()
	hosts := strings.Split(os.Getenv(HostsEnv), ",")
	if hosts[0] == "" {
		hosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(hosts[0], "9042"), time.Second)
	if err != nil {
		servicetest.Missing(t, "Cassandra not reachable: run scripts/cassandra.sh up ("+HostsEnv+"="+os.Getenv(HostsEnv)+", "+err.Error()+")")
		return nil
	}
	_ = conn.Close()
	return hosts
}

// DC is the test cluster's data center.
func DC() string {
	if dc := os.Getenv(DCEnv); dc != "" {
		return dc
	}
	return "dc1"
}

var (
	adminOnce sync.Once
	admin     *gocql.Session
	adminErr  error
)

// Keyspace returns a keyspace name no other test run uses; the keyspace
// (which the store creates) is dropped when the test ends.
func Keyspace(t testing.TB, hosts []string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	ks := "wailtest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		adminOnce.Do(func() {
			c := gocql.NewCluster(hosts...)
			c.Timeout, c.ConnectTimeout = 30*time.Second, 10*time.Second
			admin, adminErr = c.CreateSession()
		})
		if adminErr != nil {
			t.Logf("dropping keyspace %s: %v", ks, adminErr)
			return
		}
		if err := admin.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			t.Logf("dropping keyspace %s: %v", ks, err)
		}
	})
	return ks
}

// Node runs `scripts/cassandra.sh CMD N` (kill, start, pause, resume) and
// fails the test if it fails.
func Node(t testing.TB, cmd string, n int) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("bash", script(t), cmd, strconv.Itoa(n)).CombinedOutput()
	if err != nil {
		t.Fatalf("cassandra.sh %s %d: %v\n%s", cmd, n, err, out)
	}
	t.Logf("cassandra.sh %s %d: %s", cmd, n, time.Since(start).Round(time.Millisecond))
}

// script finds scripts/cassandra.sh above the test's directory.
func script(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "scripts", "cassandra.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("scripts/cassandra.sh not found above the test's directory")
		}
		dir = parent
	}
}

// WaitState waits until node observer's gossip shows node n in state
// ("UN": up and normal, "DN": down), as `nodetool status` prints it; the
// test fails after two minutes.
func WaitState(t testing.TB, observer, n int, state string) {
	t.Helper()
	start := time.Now()
	want := state + "  " + Hosts(t)[n-1] + " "
	for {
		out, err := exec.Command("bash", script(t), "nodetool", strconv.Itoa(observer), "status").CombinedOutput()
		if err == nil && strings.Contains(string(out), want) {
			t.Logf("node %d sees node %d %s after %s", observer, n, state, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("node %d does not see node %d %s after 2 minutes (err %v):\n%s", observer, n, state, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// HoldDown pauses node n (SIGSTOP) and waits until nodes 1 and 2 (or 3,
// for n below 3) see it down, so that writes in the meantime are never sent
// to it; a paused replica that is not yet seen down would find them in its
// socket when it thaws and apply them. The returned resume resumes it and
// waits until it and the others see each other up again; if the test
// ends first, the node is resumed at cleanup. Test cluster of 3 nodes.
func HoldDown(t testing.TB, n int) (resume func()) {
	t.Helper()
	var others []int
	for o := 1; o <= 3; o++ {
		if o != n {
			others = append(others, o)
		}
	}
	Node(t, "pause", n)
	paused := true
	t.Cleanup(func() {
		if paused {
			Node(t, "resume", n)
		}
	})
	for _, o := range others {
		WaitState(t, o, n, "DN")
	}
	return func() {
		t.Helper()
		Node(t, "resume", n)
		paused = false
		for _, o := range others {
			WaitState(t, o, n, "UN")
			WaitState(t, n, o, "UN")
		}
	}
}
