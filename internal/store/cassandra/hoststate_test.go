package cassandra

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/gocql/gocql"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// TestNodeDownAndUpLogged: the driver telling that a node went down (its
// status event, or every connection to it failing) is logged once at
// WARN, with the node and what to do, and its coming back once at INFO;
// the nodes coming up at the session's start, and the driver telling a
// down node down again (each failed reconnection), log nothing. Before,
// neither was logged: a node down showed only as slower or failing
// requests (hunt-f).
func TestNodeDownAndUpLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuf
	p := newHostPolicy("dc1", "ks")
	p.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy("dc1")
	p.log = slog.New(slog.NewTextHandler(&logs, nil))
	a, b := hostIn("10.0.0.1", "dc1"), hostIn("10.0.0.2", "dc1")
	for _, h := range []*gocql.HostInfo{a, b} {
		p.AddHost(h)
		p.HostUp(h) // the session's start: its pools connected
	}
	if got := logs.take(); got != "" {
		t.Errorf("the nodes' start logged:\n%s", got)
	}
	p.HostDown(a)
	got := logs.take()
	for _, want := range []string{"level=WARN", "Cassandra node is down", "node=10.0.0.1", "data_center=dc1", "nodetool status"} {
		if !strings.Contains(got, want) {
			t.Errorf("node down: no %q in %q", want, got)
		}
	}
	p.HostDown(a) // a reconnection that failed
	if got := logs.take(); got != "" {
		t.Errorf("a down node told down again logged again:\n%s", got)
	}
	p.HostUp(a)
	got = logs.take()
	for _, want := range []string{"level=INFO", "Cassandra node is up again", "node=10.0.0.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("node up: no %q in %q", want, got)
		}
	}
	p.HostUp(a)
	if got := logs.take(); got != "" {
		t.Errorf("an up node told up again logged again:\n%s", got)
	}
}
