package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
)

// memCatalog is a store catalog in memory (compare-and-set per entry).
type memCatalog struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCatalog) Tables(context.Context) ([]store.Table, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []store.Table
	for k, v := range c.m {
		out = append(out, store.Table{Name: k, Spec: v})
	}
	return out, nil
}

func (c *memCatalog) SwapTable(_ context.Context, name string, old, new []byte) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.m[name]
	if !bytes.Equal(cur, old) || (cur == nil) != (old == nil) {
		return cur, false, nil
	}
	if new == nil {
		delete(c.m, name)
	} else {
		c.m[name] = new
	}
	return nil, true, nil
}

const testTable = "t"

// fixture is a log with a table's event topic and a sink manager over it.
type fixture struct {
	t   *testing.T
	log intentlog.Log
	cat *memCatalog
	tbl group.Table
}

func newFixture(t *testing.T, partitions int32) *fixture {
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	f := &fixture{t: t, log: log, cat: &memCatalog{m: map[string][]byte{}},
		tbl: group.Table{Name: testTable, Topic: "wail.events." + testTable, Partitions: partitions}}
	if err := log.CreateTopic(context.Background(), f.tbl.Topic, partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) manager() *Manager {
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	return m
}

// publish appends events of key k with version v.
func (f *fixture) publish(events ...*wailv1.ChangeEvent) {
	recs := make([]*intentlog.Record, len(events))
	for i, e := range events {
		v, err := proto.Marshal(e)
		if err != nil {
			f.t.Fatal(err)
		}
		recs[i] = &intentlog.Record{Key: e.Key, Value: v}
	}
	if err := f.log.Append(context.Background(), f.tbl.Topic, recs); err != nil {
		f.t.Fatal(err)
	}
}

func event(key string, version uint64) *wailv1.ChangeEvent {
	return &wailv1.ChangeEvent{Table: testTable, Key: []byte(key), Op: wailv1.Op_OP_UPSERT, Version: version,
		Value: []byte(fmt.Sprintf("%s@%d", key, version)), EventId: fmt.Sprintf("%s/%s/%d", testTable, key, version)}
}

// endpoint is a webhook receiver that records the batches it answered 2xx
// (or took, then answered too late), checks signatures, and fails as told.
type endpoint struct {
	t      *testing.T
	secret []byte
	addr   string
	fail   func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) (handled bool)

	mu       sync.Mutex
	srv      *http.Server
	received []*wailv1.ChangeEvent // in arrival order, duplicates included
	requests atomic.Int64
	badSig   atomic.Int64
}

func newEndpoint(t *testing.T, secret string) *endpoint {
	e := &endpoint{t: t, secret: []byte(secret)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	t.Cleanup(e.down)
	return e
}

func (e *endpoint) url() string { return "http://" + e.addr + "/hook" }

func (e *endpoint) serve(ln net.Listener) {
	srv := &http.Server{Handler: e}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go srv.Serve(ln)
}

// down closes the listener and every connection: connection refused.
func (e *endpoint) down() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// up listens again on the same address.
func (e *endpoint) up() {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.serve(ln)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if len(e.secret) > 0 {
		if err := client.VerifyWebhook(e.secret, r.Header.Get(HeaderSignature), body, time.Now(), time.Minute); err != nil {
			e.badSig.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	var b wailv1.SinkBatch
	unmarshal := protojson.Unmarshal
	if r.Header.Get("Content-Type") == "application/x-protobuf" {
		unmarshal = proto.Unmarshal
	}
	if err := unmarshal(body, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if e.fail != nil && e.fail(w, r, &b) {
		return
	}
	e.take(&b)
}

func (e *endpoint) take(b *wailv1.SinkBatch) {
	e.mu.Lock()
	e.received = append(e.received, b.Events...)
	e.mu.Unlock()
}

func (e *endpoint) events() []*wailv1.ChangeEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*wailv1.ChangeEvent(nil), e.received...)
}

// checkOrder checks that per key the endpoint received versions in
// increasing order, a version it saw before excepted (a redelivery), and
// returns the distinct versions per key.
func checkOrder(t *testing.T, got []*wailv1.ChangeEvent) map[string]map[uint64]bool {
	t.Helper()
	seen := map[string]map[uint64]bool{}
	top := map[string]uint64{}
	for _, e := range got {
		k := string(e.Key)
		if seen[k] == nil {
			seen[k] = map[uint64]bool{}
		}
		if e.Version <= top[k] && !seen[k][e.Version] {
			t.Errorf("key %s: version %d received after %d and never before: out of order", k, e.Version, top[k])
		}
		seen[k][e.Version] = true
		top[k] = max(top[k], e.Version)
	}
	return seen
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSinkDeliversThroughFaults: an endpoint that fails at random (500,
// an answer after the sink's timeout, a 10 MB answer, a redirect to
// another host, a dropped connection) and is down for a while, and a sink
// whose manager is closed and started again mid-run, receives every event
// in per-key order; only redeliveries repeat.
func TestSinkDeliversThroughFaults(t *testing.T) {
	f := newFixture(t, 4)
	ep := newEndpoint(t, "s3cret")
	var faults [6]atomic.Int64
	rnd := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		rmu.Lock()
		x := rnd.IntN(100)
		rmu.Unlock()
		switch {
		case x < 20:
			faults[0].Add(1)
			http.Error(w, "try later", http.StatusServiceUnavailable)
		case x < 24: // took it, answers after the sink gave up: a redelivery follows
			faults[1].Add(1)
			ep.take(b)
			time.Sleep(400 * time.Millisecond)
		case x < 27: // a huge answer: the sink reads 64 KiB at most
			faults[2].Add(1)
			ep.take(b)
			w.WriteHeader(http.StatusOK)
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for range 10 {
				if _, err := w.Write(chunk); err != nil {
					break
				}
			}
		case x < 30: // a redirect to another host is not followed
			faults[3].Add(1)
			http.Redirect(w, r, "http://203.0.113.1/elsewhere", http.StatusTemporaryRedirect)
		case x < 33: // the connection drops without an answer
			faults[4].Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
		default:
			return false
		}
		return true
	}
	m := f.manager()
	def := &wailv1.Sink{Table: testTable, Name: "hook", Url: ep.url(), Secret: "s3cret", Start: "beginning",
		MaxBatchEvents: 7, TimeoutMs: 200, BackoffMinMs: 5, BackoffMaxMs: 100, MaxRetryMs: 120_000}
	if _, created, err := m.Create(context.Background(), def); err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	const keys, rounds = 50, 30
	var version uint64
	want := map[string]uint64{}
	publishRound := func() {
		evs := make([]*wailv1.ChangeEvent, 0, keys)
		for k := range keys {
			version++
			key := fmt.Sprintf("k%02d", k)
			evs = append(evs, event(key, version))
			want[key] = version
		}
		f.publish(evs...)
	}
	for r := range rounds {
		publishRound()
		switch r {
		case 8: // down for a while
			ep.down()
			faults[5].Add(1)
			time.Sleep(700 * time.Millisecond)
			ep.up()
		case 16: // the process restarts: a new manager over the same log and catalog
			waitFor(t, "some deliveries", time.Minute, func() bool { return len(ep.events()) > 0 })
			m.Close()
			m = f.manager()
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer m.Close()
	waitFor(t, "every event", 2*time.Minute, func() bool {
		seen := map[string]map[uint64]bool{}
		for _, e := range ep.events() {
			if seen[string(e.Key)] == nil {
				seen[string(e.Key)] = map[uint64]bool{}
			}
			seen[string(e.Key)][e.Version] = true
		}
		n := 0
		for _, vs := range seen {
			n += len(vs)
		}
		return n == keys*rounds
	})
	got := ep.events()
	seen := checkOrder(t, got)
	if len(seen) != keys {
		t.Errorf("%d keys received, want %d", len(seen), keys)
	}
	for k, v := range want {
		if !seen[k][v] {
			t.Errorf("key %s: last version %d not received", k, v)
		}
	}
	for i, name := range []string{"503", "late answer", "huge answer", "redirect", "dropped connection", "down"} {
		if faults[i].Load() == 0 {
			t.Errorf("fault %q never happened", name)
		}
	}
	if ep.badSig.Load() != 0 {
		t.Errorf("%d requests with a bad signature", ep.badSig.Load())
	}
	var st *wailv1.SinkStatus
	waitFor(t, "the last acknowledgement", time.Minute, func() bool {
		var err error
		st, err = m.Describe(context.Background(), testTable, "hook")
		return err == nil && st.Lag == 0
	})
	if st.DeadLetteredEvents != 0 || st.Retries == 0 || st.Lag != 0 {
		t.Errorf("status: %d dead-lettered, %d retries, lag %d; want 0, some, 0", st.DeadLetteredEvents, st.Retries, st.Lag)
	}
	t.Logf("%d events published, %d received (%d redelivered), %d requests; faults: %v; status %v",
		keys*rounds, len(got), len(got)-keys*rounds, ep.requests.Load(), &faults, st)
}
