package eventbus

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kfake"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// kfakeStreams is a Service on a Kafka log on a kfake cluster (one
// broker) with table "replaced" of n partitions, served, and a client of
// it; its log is log, wrapped by wrap when not nil.
type kfakeStreams struct {
	ctx  context.Context
	l    *kafka.Log
	bus  *Bus
	c    wailv1connect.EventServiceClient
	logs *logbuf.Buffer
}

const replacedTable = "replaced"

func newKfakeStreams(t *testing.T, n int32, wrap func(*kafka.Log) intentlog.Log) *kfakeStreams {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l, err := kafka.Open(ctx, kafka.Options{Brokers: c.ListenAddrs(), ClientID: "wail-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var log intentlog.Log = l
	if wrap != nil {
		log = wrap(l)
	}
	ks := &kfakeStreams{ctx: ctx, l: l, bus: New(log), logs: &logbuf.Buffer{}}
	if err := ks.bus.CreateTable(ctx, replacedTable, n, 0); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMicro() // the same table throughout
	svc := NewService(ks.bus, func(table string) (int32, bool) { return n, table == replacedTable }).
		WithTableCreated(func(string) int64 { return created }).
		WithLogger(slog.New(slog.NewTextHandler(ks.logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	mux := http.NewServeMux()
	_, closeAll := serveEvents(mux, svc, APILimits{})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { closeAll(); srv.Close() })
	ks.c = wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL)
	return ks
}

// replaceTopic deletes the table's event topic and creates it again (n
// partitions) behind wail's back, until it has another id.
func replaceTopic(ctx context.Context, t *testing.T, l *kafka.Log, n int32) {
	t.Helper()
	topic := Topic(replacedTable)
	ids, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for {
		err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{Compact: true})
		now, ierr := l.TopicIDs(ctx, topic)
		if err == nil && ierr == nil && now[topic] != ids[topic] && now[topic] != (intentlog.TopicID{}) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("creating the topic again: %v, %v", err, ierr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCursorAfterTopicReplaced: on Kafka, a table's event topic deleted
// and created again behind wail's back (the same name, partition count
// and table creation time) after a subscriber took a cursor: a Subscribe
// from that cursor delivers every event of the new topic (each came after
// the cursor's position), and says so in a WARN. It resumed at the old
// topic's offsets and skipped the new topic's events below them.
func TestCursorAfterTopicReplaced(t *testing.T) {
	t.Parallel()
	const n = 2
	ks := newKfakeStreams(t, n, nil)
	rl := realLog{log: ks.l}
	publishMixed(ks.ctx, t, rl, ks.bus, replacedTable, 100, 6) // the old topic: 6 events (+ tombstones)
	old, stale := readToEnd(ks.ctx, t, ks.c, replacedTable, "beginning")
	if len(old) != 6 {
		t.Fatalf("%d events on the old topic, want 6", len(old))
	}
	replaceTopic(ks.ctx, t, ks.l, n)
	publishMixed(ks.ctx, t, rl, ks.bus, replacedTable, 1000, 15) // the new topic: 15 events
	got, _ := readToEnd(ks.ctx, t, ks.c, replacedTable, stale)
	if len(got) != 15 {
		t.Fatalf("from a cursor of the replaced topic: %d events of the new topic's 15; the others were skipped", len(got))
	}
	if logs := ks.logs.String(); !strings.Contains(logs, "deleted and created again") || !strings.Contains(logs, "nothing is skipped") {
		t.Errorf("no WARN that the topic was replaced; logged:\n%s", logs)
	}
}

// replacingLog is a Kafka log whose next NewReader, once armed, first
// replaces the table's event topic and publishes events on the new one:
// the topic replaced after Subscribe read its id, before its readers
// started.
type replacingLog struct {
	*kafka.Log
	armed atomic.Pointer[func()]
}

func (l *replacingLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	if f := l.armed.Swap(nil); f != nil {
		(*f)()
	}
	return l.Log.NewReader(topic, p, offset)
}

// TestStreamTopicReplacedAtStart: the event topic replaced behind wail's
// back between Subscribe's reading of its id and its reader's start: the
// reader reads the new topic at the cursor's offsets, which are the old
// topic's. The records' topic id tells: the stream ends (unavailable,
// saying why) before it delivers any, and resuming from the cursor
// delivers every event of the new topic. It delivered the new topic's
// events past the old offsets, the others skipped.
func TestStreamTopicReplacedAtStart(t *testing.T) {
	t.Parallel()
	const n = 1
	var rlog *replacingLog
	ks := newKfakeStreams(t, n, func(l *kafka.Log) intentlog.Log {
		rlog = &replacingLog{Log: l}
		return rlog
	})
	rl := realLog{log: ks.l}
	publishMixed(ks.ctx, t, rl, ks.bus, replacedTable, 100, 6) // the old topic: 6 events (+ tombstones)
	_, stale := readToEnd(ks.ctx, t, ks.c, replacedTable, "beginning")
	replace := func() {
		replaceTopic(ks.ctx, t, ks.l, n)
		publishMixed(ks.ctx, t, rl, ks.bus, replacedTable, 1000, 15) // the new topic: 15 events
	}
	rlog.armed.Store(&replace)
	ctx, cancel := context.WithTimeout(ks.ctx, 5*time.Second)
	defer cancel()
	s, err := ks.c.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: replacedTable, From: stale}))
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for s.Receive() {
		if s.Msg().Event != nil {
			events++
		}
	}
	err = s.Err()
	s.Close()
	if events > 0 || connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "created again behind wail's back since this stream started") {
		t.Fatalf("the topic replaced as the stream started: %d events delivered, then %v; "+
			"want none, and unavailable saying the topic was created again", events, err)
	}
	if got, _ := readToEnd(ks.ctx, t, ks.c, replacedTable, stale); len(got) != 15 {
		t.Fatalf("resumed from the cursor: %d events of the new topic's 15", len(got))
	}
}
