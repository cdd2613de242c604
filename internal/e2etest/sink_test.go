package e2etest

import (
	"context"
	"io"
	"math/rand"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// flakyEndpoint is a webhook receiver on a fixed address that fails at
// random (503, or an answer after the sink's timeout: taken, then
// delivered again) and can be down (its listener closed: connection
// refused). It keeps every event it took, in arrival order.
type flakyEndpoint struct {
	t      *testing.T
	secret []byte
	addr   string

	mu       sync.Mutex
	srv      *http.Server
	rng      *rand.Rand
	received []*wailv1.ChangeEvent
	faults   [3]int // 503, late answer, down
	badSig   int
}

func newFlakyEndpoint(t *testing.T, secret string) *flakyEndpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &flakyEndpoint{t: t, secret: []byte(secret), addr: ln.Addr().String(), rng: rand.New(rand.NewSource(7))}
	e.serve(ln)
	t.Cleanup(func() { e.setDown(true) })
	return e
}

func (e *flakyEndpoint) serve(ln net.Listener) {
	srv := &http.Server{Handler: e}
	e.srv = srv
	go srv.Serve(ln)
}

// setDown closes the listener (and connections), or listens again on the
// same address.
func (e *flakyEndpoint) setDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if down {
		if e.srv != nil {
			e.srv.Close()
			e.srv = nil
			e.faults[2]++
		}
		return
	}
	for i := 0; ; i++ {
		ln, err := net.Listen("tcp", e.addr)
		if err == nil {
			e.serve(ln)
			return
		}
		if i == 100 {
			e.t.Errorf("listen again on %s: %v", e.addr, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *flakyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	e.mu.Lock()
	if err := client.VerifyWebhook(e.secret, r.Header.Get(client.WebhookSignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		e.badSig++
		e.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	x := e.rng.Intn(100)
	e.mu.Unlock()
	var b wailv1.SinkBatch
	if err := protojson.Unmarshal(body, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case x < 20:
		e.count(0)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	case x < 25: // taken, but answered after the sink's timeout
		e.take(&b)
		e.count(1)
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		return
	}
	e.take(&b)
}

func (e *flakyEndpoint) count(i int) {
	e.mu.Lock()
	e.faults[i]++
	e.mu.Unlock()
}

func (e *flakyEndpoint) take(b *wailv1.SinkBatch) {
	e.mu.Lock()
	e.received = append(e.received, b.Events...)
	e.mu.Unlock()
}

// TestSinkAcrossKill9: a webhook sink of a table written by three writers
// delivers to an endpoint that fails at random and is down for two
// seconds, while `wail serve` is killed with SIGKILL and restarted twice.
// The endpoint must receive every event of the bus, per key in order (a
// version seen again is a redelivery; one older than a version received
// and never seen before is a failure), and what it received, redeliveries
// left out, must keep the four invariants against the writes and the
// store.
func TestSinkAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, dir, srv := serveWithTable(ctx, t)
	url := "http://" + srv.addr
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	ep := newFlakyEndpoint(t, "e2e-secret")
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: table, Sink: &wailv1.Sink{
		Name: "hook", Url: "http://" + ep.addr + "/events", Secret: "e2e-secret", Start: "beginning",
		MaxBatchEvents: 50, TimeoutMs: 500, BackoffMinMs: 20, BackoffMaxMs: 300, MaxRetryMs: 180_000,
	}})); err != nil {
		t.Fatal(err)
	}
	w := &remoteWriters{}
	w.url.Store(&url)
	outage := make(chan struct{})
	go func() { // the endpoint is down for two seconds mid-run
		defer close(outage)
		time.Sleep(1500 * time.Millisecond)
		ep.setDown(true)
		time.Sleep(2 * time.Second)
		ep.setDown(false)
	}()
	srv = w.killTwice(ctx, t, srv, "http://", func() *child { return startServe(t, bin, dir) })
	<-outage
	url = "http://" + srv.addr
	waitResolvedRemote(t, ctx, url)
	admin = wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	var st *wailv1.SinkStatus
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: table, Name: "hook"}))
		if err != nil {
			t.Fatal(err)
		}
		if st = d.Msg.Status; st.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not catch up: %v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.terminate(t)

	ep.mu.Lock()
	got := append([]*wailv1.ChangeEvent(nil), ep.received...)
	faults, badSig := ep.faults, ep.badSig
	ep.mu.Unlock()
	if faults[0] == 0 || faults[1] == 0 || faults[2] == 0 {
		t.Errorf("faults %v (503, late answer, down): each must have happened", faults)
	}
	if badSig != 0 || st.DeadLetteredEvents != 0 {
		t.Errorf("%d requests with a bad signature, %d events dead-lettered; want none", badSig, st.DeadLetteredEvents)
	}
	seen, firsts := firstDeliveries(t, got)
	log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	st2, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	bus := readEvents(t, ctx, log, catalog.Table{Name: table, Partitions: 4})
	for _, e := range bus {
		if !seen[string(e.Key)][e.Version] {
			t.Errorf("event %s@%d (partition %d offset %d) is on the bus but never reached the endpoint", e.Key, e.Version, e.Partition, e.Offset)
		}
	}
	if len(firsts) != len(bus) {
		t.Errorf("the endpoint received %d distinct events, the bus holds %d", len(firsts), len(bus))
	}
	keys, writes := w.keys()
	Check(t, writes, firsts, w.oracle(), finalState(t, ctx, st2, table, keys), nil)
	t.Logf("%d writes acknowledged; %d events on the bus; the endpoint received %d (%d redelivered); faults (503, late, down) %v",
		w.acked.Load(), len(bus), len(got), len(got)-len(firsts), faults)
}

// firstDeliveries checks that events an endpoint received are per key in
// order, redeliveries (versions seen before) left out, and returns which
// versions of each key it saw and the first delivery of each.
func firstDeliveries(t *testing.T, got []*wailv1.ChangeEvent) (map[string]map[uint64]bool, []Event) {
	t.Helper()
	seen := map[string]map[uint64]bool{}
	top := map[string]uint64{}
	var firsts []Event
	for _, e := range got {
		k := string(e.Key)
		if seen[k] == nil {
			seen[k] = map[uint64]bool{}
		}
		if seen[k][e.Version] {
			continue
		}
		if e.Version <= top[k] {
			t.Errorf("key %s: version %d received after %d and never before: out of per-key order", k, e.Version, top[k])
		}
		seen[k][e.Version], top[k] = true, max(top[k], e.Version)
		firsts = append(firsts, Event{Event: intent.EventFromProto(e)})
	}
	return seen, firsts
}
