package e2etest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/store/postgres"
)

// TestSinkAcrossProcesses: two `wail serve` processes share a PostgreSQL
// store and Kafka, both with sinks enabled; a webhook sink of a table
// written by three writers. The process that delivers is killed with
// SIGKILL mid-run: the other takes the sink over (after the lease) from
// what was acknowledged. The endpoint receives every event of the bus,
// per key in order (redeliveries left out), what it received keeps the
// four invariants, and its requests of one partition never overlap in
// time: one deliverer at a time.
func TestSinkAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := startShared(t, ctx, "xs_", 2, 4, "sinks:\n  refresh: 200ms\n")
	tbl, url, procs := d.table, d.url, d.procs
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url(1)) // where the table was created

	// The endpoint: every request's events and when it was handled.
	type request struct {
		p        int32
		from, to time.Time
	}
	var mu sync.Mutex
	var got []*wailv1.ChangeEvent
	var reqs []request
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from := time.Now()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(5 * time.Millisecond) // long enough for two deliverers to overlap
		mu.Lock()
		got = append(got, b.Events...)
		reqs = append(reqs, request{b.Partition, from, time.Now()})
		mu.Unlock()
	}))
	defer ep.Close()
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: tbl, Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL + "/events", Secret: "e2e-secret", Start: "beginning", MaxBatchEvents: 20,
	}})); err != nil {
		t.Fatal(err)
	}
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	w := &remoteWriters{table: tbl}
	stopWriters := w.start(ctx, url(1), 3)
	w.progress(t, "before the kill")
	waitFor(t, "events at the endpoint", func() bool { return received() >= 100 })
	delivering := func(i int) float64 { return metric(t, url(i), "wail_sink_delivered_events_total", `sink="hook"`) }
	owner := 0
	if delivering(1) > 0 {
		owner = 1
	}
	if delivering(1-owner) > 0 {
		t.Fatalf("both processes delivered: %v and %v events", delivering(0), delivering(1))
	}
	survivor := 1 - owner
	su := url(survivor) // a new variable: the writers read the old one through its pointer
	w.url.Store(&su)
	before := received()
	procs[owner].kill(t)
	killedAt := time.Now()
	t.Logf("process %d (the deliverer) killed with SIGKILL after %d events at the endpoint", owner, before)
	w.progress(t, "after the kill")
	waitFor(t, "the other process to deliver", func() bool { return delivering(survivor) > 0 })
	took := time.Since(killedAt)
	w.progress(t, "after the take-over")
	stopWriters()

	bus := d.events(t, ctx)
	waitFor(t, "every event of the bus at the endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]map[uint64]bool{}
		for _, e := range got {
			if seen[string(e.Key)] == nil {
				seen[string(e.Key)] = map[uint64]bool{}
			}
			seen[string(e.Key)][e.Version] = true
		}
		for _, e := range bus {
			if !seen[string(e.Key)][e.Version] {
				return false
			}
		}
		return true
	})
	procs[survivor].terminate(t)

	mu.Lock()
	defer mu.Unlock()
	// A deliverer posts a partition's batches one after another (and up
	// to partitions_in_flight partitions at once).
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].from.Before(reqs[j].from) })
	last := map[int32]request{}
	for i, r := range reqs {
		if prev, ok := last[r.p]; ok && r.from.Before(prev.to) {
			t.Fatalf("request %d of partition %d overlaps the one before (%s .. %s, then from %s): two deliverers at once", i, r.p,
				prev.from.Format(time.StampMicro), prev.to.Format(time.StampMicro), r.from.Format(time.StampMicro))
		}
		last[r.p] = r
	}
	_, firsts := firstDeliveries(t, got)
	st, err := postgres.Open(ctx, postgres.Options{DSN: d.dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, writes := w.keys()
	Check(t, writes, firsts, w.oracle(), finalState(t, ctx, st, tbl, keys), nil)
	t.Logf("%d writes acknowledged; %d events on the bus; the endpoint received %d in %d requests (%d redelivered); the other process delivered %s after the kill",
		w.acked.Load(), len(bus), len(got), len(reqs), len(got)-len(firsts), took.Round(10*time.Millisecond))
}
