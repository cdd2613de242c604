package eventbus

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/readahead"
)

// streams is a Service on a memLog with a table "t", served, a client
// of it, and a context that ends the test's waits.
type streams struct {
	ctx context.Context
	log *memLog
	bus *Bus
	svc *Service
	c   wailv1connect.EventServiceClient
	url string // the server's, for other clients
	// open counts the API's streams open; closeAll ends them (server
	// shutdown).
	open     func() int
	closeAll func()
	// logs is what the service logged.
	logs *logbuf.Buffer
}

// newStreams serves a Service with limits l on a memLog whose table "t"
// has n partitions.
func newStreams(t *testing.T, n int32, l Limits) *streams {
	t.Helper()
	return newStreamsAPI(t, n, l, APILimits{})
}

// newStreamsAPI is newStreams whose API has limits al.
func newStreamsAPI(t *testing.T, n int32, l Limits, al APILimits) *streams {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	st := &streams{ctx: ctx, log: newMemLog(), logs: &logbuf.Buffer{}}
	st.bus = New(st.log)
	if err := st.bus.CreateTable(ctx, "t", n, 0); err != nil {
		t.Fatal(err)
	}
	st.svc = NewService(st.bus, func(table string) (int32, bool) { return n, table == "t" }).WithLimits(l).
		WithLogger(slog.New(slog.NewTextHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	mux := http.NewServeMux()
	st.open, st.closeAll = serveEvents(mux, st.svc, al)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { cancel(); st.closeAll(); srv.Close() })
	st.c, st.url = wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL), srv.URL
	return st
}

// upserts publishes an upsert of key k for each version.
func upserts(t *testing.T, b *Bus, versions ...uint64) {
	t.Helper()
	var evs []intent.Event
	for _, v := range versions {
		evs = append(evs, intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: v, Value: []byte("value")})
	}
	if err := b.Publish(context.Background(), "t", evs); err != nil {
		t.Fatal(err)
	}
}

// subscribe opens a stream from from; its error, if the call failed.
func subscribe(ctx context.Context, c wailv1connect.EventServiceClient, table, from string) (*connect.ServerStreamForClient[wailv1.SubscribeResponse], error) {
	return c.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: from}))
}

// receive returns the next n events of a stream.
func receive(t *testing.T, s *connect.ServerStreamForClient[wailv1.SubscribeResponse], n int) []*wailv1.SubscribeResponse {
	t.Helper()
	var out []*wailv1.SubscribeResponse
	for len(out) < n && s.Receive() {
		if s.Msg().Event != nil {
			out = append(out, s.Msg())
		}
	}
	if len(out) < n {
		t.Fatalf("stream ended after %d events of %d: %v", len(out), n, s.Err())
	}
	return out
}

// streamErr is the error a stream that fails at once ends with.
func streamErr(ctx context.Context, c wailv1connect.EventServiceClient, table, from string) error {
	s, err := subscribe(ctx, c, table, from)
	if err != nil {
		return err
	}
	defer s.Close()
	for s.Receive() {
	}
	return s.Err()
}

// TestSubscribeRefused: what a client is told when its stream cannot
// begin.
func TestSubscribeRefused(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 2, Limits{})
	ctx, log, c := st.ctx, st.log, st.c
	for _, tc := range []struct {
		table, from string
		code        connect.Code
		msg         string
	}{
		{"nope", "", connect.CodeNotFound, "create it with `wail table create nope`"},
		{"t", "yesterday", connect.CodeInvalidArgument, "invalid start position"},
	} {
		if err := streamErr(ctx, c, tc.table, tc.from); connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("table %s from %q: %v, want %v saying %q", tc.table, tc.from, err, tc.code, tc.msg)
		}
	}
	log.mu.Lock()
	log.boundsErr = errors.New("broker gone")
	log.mu.Unlock()
	if err := streamErr(ctx, c, "t", "beginning"); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "broker gone") {
		t.Errorf("bounds unknown: %v", err)
	}
	log.mu.Lock()
	log.boundsErr, log.readerErr = nil, errors.New("no reader")
	log.mu.Unlock()
	if err := streamErr(ctx, c, "t", "beginning"); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "read wail.events.t/") {
		t.Errorf("no reader: %v", err)
	}
	log.mu.Lock()
	log.readerErr, log.nextErr = nil, intentlog.ErrCorrupt
	log.mu.Unlock()
	if err := streamErr(ctx, c, "t", "beginning"); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), intentlog.ErrCorrupt.Error()) {
		t.Errorf("a read that fails: %v", err)
	}
	if n := st.open(); n != 0 {
		t.Errorf("%d streams open after every one failed", n)
	}
}

// TestSubscribeLimits: api.max_subscriptions and its per-client cousin
// refuse a stream over them with ResourceExhausted; a closed stream frees
// its slot.
func TestSubscribeLimits(t *testing.T) {
	t.Parallel()
	opened := make(chan int, 16)
	st := newStreamsAPI(t, 1, Limits{}, APILimits{MaxStreams: 1, Opened: func(n int) { opened <- n }})
	ctx, b, c := st.ctx, st.bus, st.c
	upserts(t, b, 1)
	sctx, stop := context.WithCancel(ctx)
	s, err := subscribe(sctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, s, 1)
	if err := streamErr(ctx, c, "t", "beginning"); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "api.max_subscriptions") {
		t.Fatalf("a second stream: %v", err)
	}
	stop()
	s.Close()
	for n := -1; n != 0; {
		select {
		case n = <-opened:
		case <-ctx.Done():
			t.Fatalf("the closed stream's slot was not freed (%d open)", n)
		}
	}
	s, err = subscribe(ctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	receive(t, s, 1)
}

// TestSubscribeStart: where each start position begins a partition (one
// whose first two records retention removed).
func TestSubscribeStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from  string
		first int64 // offset of the first event; 6: the next published
		vers  uint64
	}{
		{"beginning", 2, 3},
		{"@0", 2, 3}, // below the start: the start
		{"@2", 2, 3},
		{"@4", 4, 5},
		{"@6", 6, 7},
		{"@100", 6, 7}, // beyond the end: the end
		{"latest", 6, 7},
		{"v4", 4, 5}, // from the offset of v4's time less clockSkew (3 here), skipping versions up to 4
	} {
		t.Run(tc.from, func(t *testing.T) {
			t.Parallel()
			st := newStreams(t, 1, Limits{})
			ctx, log, b, c := st.ctx, st.log, st.bus, st.c
			upserts(t, b, 1, 2, 3, 4, 5, 6) // offsets 0..5
			log.retain(Topic("t"), 0, 2)
			log.mu.Lock()
			log.timeOffset = 3
			log.mu.Unlock()
			s, err := subscribe(ctx, c, "t", tc.from)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tc.first == 6 {
				upserts(t, b, 7)
			}
			got := receive(t, s, 1)[0]
			if got.Offset != tc.first || got.Event.Version != tc.vers || got.Partition != 0 {
				t.Errorf("first event at %d (version %d), want %d (version %d)", got.Offset, got.Event.Version, tc.first, tc.vers)
			}
			// A start below the log's start skips what retention removed:
			// the operator is told, with how many offsets (TestSubscribeStart
			// "@0"; "beginning" asks for whatever is there).
			const skipped = "retention removed events of partition 0 before this stream read them: skipped 2 offsets"
			if logs := st.logs.String(); strings.Contains(logs, skipped) != (tc.from == "@0") {
				t.Errorf("from %s: the log says %q; want the skip named only for @0", tc.from, logs)
			}
			log.mu.Lock()
			asked := log.askedTime
			log.mu.Unlock()
			if want := hlc.Time(4).Add(-clockSkew); tc.from == "v4" && !asked.Equal(want) {
				t.Errorf("asked the offset of %v, want %v (v4's time less clockSkew)", asked, want)
			}
		})
	}
}

// TestSubscribeRetention: when retention removes the records a stream is
// about to read, it goes on from the partition's new start, and says what
// it skipped.
func TestSubscribeRetention(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	ctx, log, b, c := st.ctx, st.log, st.bus, st.c
	upserts(t, b, 1, 2, 3, 4, 5, 6)
	log.mu.Lock()
	log.onNewReader = func() { log.retain(Topic("t"), 0, 4) }
	log.mu.Unlock()
	s, err := subscribe(ctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := receive(t, s, 2)
	if got[0].Offset != 4 || got[0].Event.Version != 5 || got[1].Offset != 5 {
		t.Fatalf("after retention: offsets %d, %d; want 4, 5", got[0].Offset, got[1].Offset)
	}
	if logs := st.logs.String(); !strings.Contains(logs, "skipped 4 offsets") {
		t.Errorf("the skip past retention is not logged with its offsets: %q", logs)
	}
	if n := log.openReaders(); n != 1 {
		t.Errorf("%d readers open, want 1 (the one past retention)", n)
	}
}

// TestSubscribeSkips: tombstones and records that are not events are not
// delivered; what follows them is.
func TestSubscribeSkips(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	ctx, log, b, c := st.ctx, st.log, st.bus, st.c
	upserts(t, b, 1)
	if err := log.Append(ctx, Topic("t"), []*intentlog.Record{{Key: []byte("k")}, {Key: []byte("k"), Value: []byte{0xff}}}); err != nil {
		t.Fatal(err)
	}
	upserts(t, b, 2)
	s, err := subscribe(ctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := receive(t, s, 2)
	if got[0].Offset != 0 || got[0].Event.Version != 1 || got[1].Offset != 3 || got[1].Event.Version != 2 {
		t.Fatalf("events at %d (v%d), %d (v%d); want 0 (v1), 3 (v2)", got[0].Offset, got[0].Event.Version, got[1].Offset, got[1].Event.Version)
	}
}

// TestSubscribeClose: Close (server shutdown) ends every open stream and
// its readers.
func TestSubscribeClose(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 2, Limits{})
	ctx, log, b, c := st.ctx, st.log, st.bus, st.c
	upserts(t, b, 1)
	s, err := subscribe(ctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	receive(t, s, 1)
	st.closeAll()
	for s.Receive() {
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
	for st.open() != 0 || log.openReaders() != 0 {
		if ctx.Err() != nil {
			t.Fatalf("%d streams and %d readers open after Close", st.open(), log.openReaders())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSubscribeBudget: a stream whose read-ahead budget is smaller than
// one event still delivers every event: each frees its share once sent.
func TestSubscribeBudget(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 2, Limits{BufferBytes: 1})
	ctx, b, c := st.ctx, st.bus, st.c
	var vs []uint64
	for v := uint64(1); v <= 40; v++ {
		vs = append(vs, v)
	}
	upserts(t, b, vs...)
	s, err := subscribe(ctx, c, "t", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	receive(t, s, 40)
}

// TestPumpHoldsItsBudget: a partition's reader stops reading ahead once
// the events it holds for a client that does not take them fill the
// budget, and reads on as they are taken.
func TestPumpHoldsItsBudget(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 1, Limits{})
	log, b, svc := st.log, st.bus, st.svc
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	upserts(t, b, 1, 2, 3, 4, 5, 6)
	size := int64(len(log.parts[Topic("t")][0].recs[0].Value))
	budget := readahead.NewPool(0).Stream(2 * size)
	r, err := log.NewReader(Topic("t"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := make(chan batch, 10)
	done := make(chan error, 1)
	go func() { done <- svc.pump(ctx, r, intentlog.TopicID{}, 0, -1, 0, false, budget, out) }()
	held := func(want int) {
		t.Helper()
		time.Sleep(50 * time.Millisecond) // time to read too far, if it would
		if len(out) != want {
			t.Fatalf("%d batches held, want %d (the budget)", len(out), want)
		}
	}
	held(1) // the memLog's reads return 2 records: one read fills the budget
	var d batch
	select {
	case d = <-out:
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	if d.size != 2*size || len(d.events) != 2 || d.events[0].event.Version != 1 || d.next != 2 {
		t.Fatalf("batch %+v, want versions 1 and 2 taking %d bytes", d, 2*size)
	}
	budget.Release(d.size)
	held(1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("pump ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pump did not end with its context")
	}
}
