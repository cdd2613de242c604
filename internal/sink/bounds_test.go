package sink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/store"
)

// deadLetters reads a sink's dead letters (settled ones too).
func (f *fixture) deadLetters(m *Manager, name string) (evs []*wailv1.ChangeEvent, ls []*wailv1.DeadLetter) {
	f.t.Helper()
	q, err := m.DeadLetters(context.Background(), testTable, name)
	if err != nil {
		f.t.Fatal(err)
	}
	es, _, err := q.List(context.Background(), dlq.ListOptions{IncludeSettled: true, After: -1, Limit: dlq.MaxLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range es {
		evs, ls = append(evs, e.Letter.Event), append(ls, e.Letter)
	}
	return evs, ls
}

// TestSinkBounds: a batch is dead-lettered once its attempts or its retry
// time run out, or at once when the endpoint refuses it (400); the sink
// then moves on and delivers what follows.
func TestSinkBounds(t *testing.T) {
	for _, c := range []struct {
		name         string
		status       int
		maxAttempts  int32
		maxRetryMs   int64
		wantAttempts uint32 // of the dead letter, 0 for any
		wantInError  string
	}{
		{"attempts", http.StatusInternalServerError, 3, 60_000, 3, "gave up after 3 attempts"},
		{"time", http.StatusBadGateway, 0, 300, 0, "gave up after"},
		{"refused", http.StatusBadRequest, 0, 60_000, 1, "HTTP 400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1)
			ep := newEndpoint(t, "")
			var failing atomic.Bool
			failing.Store(true)
			ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
				if !failing.Load() || string(b.Events[0].Key) != "poison" {
					return false
				}
				http.Error(w, "no", c.status)
				return true
			}
			m := f.manager()
			defer m.Close()
			if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "b", Url: ep.url(), Start: "beginning",
				MaxBatchEvents: 1, MaxAttempts: c.maxAttempts, MaxRetryMs: c.maxRetryMs, BackoffMinMs: 10, BackoffMaxMs: 50}); err != nil {
				t.Fatal(err)
			}
			f.publish(event("poison", 1), event("after", 2))
			waitFor(t, "the event after the poison one", time.Minute, func() bool { return len(ep.events()) == 1 })
			if got := ep.events()[0]; string(got.Key) != "after" {
				t.Fatalf("received %s, want only the event after the poison one", got.Key)
			}
			evs, ls := f.deadLetters(m, "b")
			if len(evs) != 1 || string(evs[0].Key) != "poison" || evs[0].Version != 1 {
				t.Fatalf("dead letters %v, want poison@1", evs)
			}
			if c.wantAttempts != 0 && ls[0].Attempts != c.wantAttempts {
				t.Errorf("attempts %d, want %d", ls[0].Attempts, c.wantAttempts)
			}
			if !strings.Contains(ls[0].Error, c.wantInError) || ls[0].Partition != 0 || ls[0].EventOffset != 0 ||
				ls[0].HttpStatus != int32(c.status) || ls[0].Permanent != (c.status == http.StatusBadRequest) {
				t.Errorf("letter %v, want an error with %q, status %d, bus offset 0 of partition 0", ls[0], c.wantInError, c.status)
			}
			var st *wailv1.SinkStatus
			waitFor(t, "the acknowledgement", time.Minute, func() bool {
				var err error
				st, err = m.Describe(context.Background(), testTable, "b")
				return err == nil && st.Lag == 0
			})
			if st.DeadLetteredEvents != 1 || st.DeliveredEvents != 1 || st.Lag != 0 || !strings.Contains(st.LastError, c.wantInError) {
				t.Errorf("status %v: want 1 dead-lettered, 1 delivered, lag 0, last error with %q", st, c.wantInError)
			}
		})
	}
}

// TestSinkSlowEndpoint: an endpoint that never reads the request (nor
// answers) costs one request timeout per attempt; the sink retries, and
// delivers once the endpoint answers.
func TestSinkSlowEndpoint(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var stuck atomic.Int64
	release := make(chan struct{})
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if stuck.Add(1) > 2 {
			return false
		}
		select { // holds the request until the sink gives up on it
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}
	defer close(release)
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "slow", Url: ep.url(), Start: "beginning",
		TimeoutMs: 150, BackoffMinMs: 10, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1))
	waitFor(t, "the delivery", time.Minute, func() bool { return len(ep.events()) == 1 })
	st, err := m.Describe(context.Background(), testTable, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if st.Retries != 2 || !strings.Contains(st.LastError, "no answer within 150ms") {
		t.Errorf("status %v: want 2 retries after timeouts", st)
	}
}

// TestSinkRedirects: 307/308 to the same host are followed (the body is
// sent again); a redirect elsewhere, or a 302 (which would turn the POST
// into a GET), is not, and the batch is retried.
func TestSinkRedirects(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var other atomic.Int64
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		switch {
		case r.URL.Path == "/hook":
			http.Redirect(w, r, "/moved", http.StatusPermanentRedirect)
		case r.URL.Path == "/moved" && other.Add(1) <= 2:
			http.Redirect(w, r, "http://localhost:1/x", http.StatusTemporaryRedirect) // another host
		case r.URL.Path == "/moved" && other.Load() <= 4:
			http.Redirect(w, r, "/hook2", http.StatusFound) // 302: not followed
		default:
			return false
		}
		return true
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "r", Url: ep.url(), Start: "beginning",
		BackoffMinMs: 5, BackoffMaxMs: 10}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1))
	waitFor(t, "the delivery", time.Minute, func() bool { return len(ep.events()) == 1 })
	st, err := m.Describe(context.Background(), testTable, "r")
	if err != nil {
		t.Fatal(err)
	}
	if st.Retries != 4 || !strings.Contains(st.LastError, "not followed") {
		t.Errorf("status %v: want 4 retries of redirects not followed", st)
	}
}

// TestSinkLifecycle: create (idempotent; another definition conflicts),
// pause (nothing delivered, position kept), resume, drop; bad
// definitions are refused with what to change.
func TestSinkLifecycle(t *testing.T) {
	f := newFixture(t, 2)
	ep := newEndpoint(t, "")
	m := f.manager()
	defer m.Close()
	ctx := context.Background()
	def := &wailv1.Sink{Table: testTable, Name: "life", Url: ep.url(), Format: FormatProtobuf}
	if _, created, err := m.Create(ctx, def); err != nil || !created {
		t.Fatal(err, created)
	}
	if _, created, err := m.Create(ctx, def); err != nil || created {
		t.Fatalf("same definition again: %v, created %v", err, created)
	}
	other := proto.Clone(def).(*wailv1.Sink)
	other.Url += "2"
	if _, _, err := m.Create(ctx, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("another definition: %v, want ErrConflict", err)
	}
	for _, bad := range []*wailv1.Sink{
		{Table: testTable, Name: "Bad", Url: ep.url()},
		{Table: testTable, Name: "x", Url: "ftp://h/"},
		{Table: testTable, Name: "x", Url: "http://u:p@h/"},
		{Table: testTable, Name: "x", Url: ep.url(), Format: "xml"},
		{Table: testTable, Name: "x", Url: ep.url(), MaxBatchEvents: MaxMaxBatch + 1},
		{Table: testTable, Name: "x", Url: ep.url(), BackoffMinMs: 100, BackoffMaxMs: 10},
		{Table: testTable, Name: "x", Url: ep.url(), Start: "middle"},
		{Table: testTable, Name: "x", Url: ep.url(), PartitionsInFlight: MaxPartitionsInFlight + 1},
		{Table: testTable, Name: "x", Url: ep.url(), PartitionsInFlight: -1},
		{Table: testTable, Name: "x", Url: ep.url(), Start: StartSnapshot}, // this manager has no Snapshotter
	} {
		if _, _, err := m.Create(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: "nope", Name: "x", Url: ep.url()}); !errors.Is(err, ErrNotFound) {
		t.Errorf("sink of an unknown table: %v, want ErrNotFound", err)
	}
	// start latest: only what comes after the create
	f.publish(event("a", 1))
	waitFor(t, "a", time.Minute, func() bool { return len(ep.events()) == 1 })
	if _, err := m.SetPaused(ctx, testTable, "life", true); err != nil {
		t.Fatal(err)
	}
	f.publish(event("b", 2))
	time.Sleep(300 * time.Millisecond)
	if n := len(ep.events()); n != 1 {
		t.Fatalf("a paused sink delivered: %d events", n)
	}
	if st, err := m.Describe(ctx, testTable, "life"); err != nil || st.State != "paused" || st.Lag == 0 || st.Sink.Secret != "" {
		t.Fatalf("paused: %v, %v", st, err)
	}
	if _, err := m.SetPaused(ctx, testTable, "life", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b after resume", time.Minute, func() bool { return len(ep.events()) == 2 })
	if l, err := m.List(ctx, testTable); err != nil || len(l) != 1 {
		t.Fatalf("list: %v, %v", l, err)
	}
	if err := m.Drop(ctx, testTable, "life"); err != nil {
		t.Fatal(err)
	}
	if err := m.Drop(ctx, testTable, "life"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drop again: %v, want ErrNotFound", err)
	}
	f.publish(event("c", 3))
	time.Sleep(300 * time.Millisecond)
	if n := len(ep.events()); n != 2 {
		t.Fatalf("a dropped sink delivered: %d events", n)
	}
}

// TestProtobufFormat: a protobuf sink's body is a SinkBatch.
func TestProtobufFormat(t *testing.T) {
	b := &wailv1.SinkBatch{Sink: "s", Table: "t", Events: []*wailv1.ChangeEvent{event("k", 1)}, FirstOffset: 3, NextOffset: 4}
	body, ctype, err := encode(FormatProtobuf, b)
	if err != nil || ctype != "application/x-protobuf" {
		t.Fatal(err, ctype)
	}
	var got wailv1.SinkBatch
	if err := proto.Unmarshal(body, &got); err != nil || !proto.Equal(&got, b) {
		t.Fatalf("decoded %v, %v", &got, err)
	}
	if _, ctype, _ := encode(FormatJSON, b); ctype != "application/json" {
		t.Fatal(ctype)
	}
}

// gatedCatalog holds the first read of the catalog after arm until
// release, the definitions already read: a Sync that read them before a
// change and applies them after it.
type gatedCatalog struct {
	*memCatalog
	armed    atomic.Bool
	read     chan struct{}
	released chan struct{}
}

func (c *gatedCatalog) Tables(ctx context.Context) ([]store.Table, error) {
	t, err := c.memCatalog.Tables(ctx)
	if c.armed.CompareAndSwap(true, false) {
		close(c.read)
		<-c.released
	}
	return t, err
}

// TestDropDuringSync: a Sync (the periodic one) read the definitions
// before a Drop and applies them after it; the dropped sink stays stopped
// (the stale read started it again until the next refresh, and it
// delivered: found by CI).
func TestDropDuringSync(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	cat := &gatedCatalog{memCatalog: f.cat, read: make(chan struct{}), released: make(chan struct{})}
	m := New(Options{Backend: cat, Log: f.log, Run: true, Refresh: time.Hour,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	ctx := context.Background()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Format: FormatProtobuf}); err != nil {
		t.Fatal(err)
	}
	cat.armed.Store(true)
	synced := make(chan error, 1)
	go func() { synced <- m.Sync(ctx) }()
	<-cat.read // that Sync has read the sink's definition
	dropped := make(chan error, 1)
	go func() { dropped <- m.Drop(ctx, testTable, "s") }()
	time.Sleep(200 * time.Millisecond) // the Drop goes as far as it can
	close(cat.released)
	for _, c := range []chan error{synced, dropped} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	n := len(m.runners)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d runners after the drop", n)
	}
	f.publish(event("a", 1))
	time.Sleep(300 * time.Millisecond)
	if got := len(ep.events()); got != 0 {
		t.Fatalf("a dropped sink delivered %d events", got)
	}
}

// TestCreateDuringTableDrop: a sink created for a table whose drop removed
// the table's sinks before the create saved it (a process that still
// served the table, its catalog stale) is not run for a table created
// again under the name (the new table inherited the orphan definition,
// and its events went to the dropped table's endpoint); a create of that
// sink for the new table replaces the orphan and runs.
func TestCreateDuringTableDrop(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var incarnation atomic.Int64 // the served table's created_at_us; 0: not served
	incarnation.Store(1)
	cat := &gatedCatalog{memCatalog: f.cat, read: make(chan struct{}), released: make(chan struct{})}
	m := New(Options{Backend: cat, Log: f.log, Run: true, Refresh: time.Hour,
		Table:       func(name string) (group.Table, bool) { return f.tbl, name == testTable && incarnation.Load() != 0 },
		Incarnation: func(string) int64 { return incarnation.Load() }})
	m.Start(context.Background())
	defer m.Close()
	ctx := context.Background()
	def := &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning", Format: FormatProtobuf}
	cat.armed.Store(true)
	created := make(chan error, 1)
	go func() {
		_, _, err := m.Create(ctx, def)
		created <- err
	}()
	<-cat.read // the create found the table and read the definitions
	incarnation.Store(0)
	if err := m.DropTable(ctx, TableDrop{Table: testTable, CreatedAtUs: 1, Held: held(true)}); err != nil {
		t.Fatal(err)
	}
	close(cat.released)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	incarnation.Store(2) // created again
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1))
	time.Sleep(300 * time.Millisecond)
	if got := len(ep.events()); got != 0 {
		t.Fatalf("the sink of the dropped table delivered %d events of the table created again", got)
	}
	if _, created, err := m.Create(ctx, def); err != nil || !created {
		t.Fatalf("create for the new table: created %t, %v", created, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ep.events()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(ep.events()); got != 1 {
		t.Fatalf("the sink created for the new table delivered %d events, want 1", got)
	}
}
