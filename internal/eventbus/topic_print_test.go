package eventbus

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// idLog is a log whose topics have ids (as Kafka's do), the id of every
// topic set by the test.
type idLog struct {
	intentlog.Log
	mu sync.Mutex
	id intentlog.TopicID
}

func (l *idLog) setID(b byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.id = intentlog.TopicID{15: b}
}

func (l *idLog) TopicIDs(_ context.Context, topics ...string) (map[string]intentlog.TopicID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]intentlog.TopicID{}
	for _, t := range topics {
		m[t] = l.id
	}
	return m, nil
}

func (l *idLog) DeleteTopicID(ctx context.Context, topic string, _ intentlog.TopicID) error {
	return l.DeleteTopic(ctx, topic)
}

// streamAll runs an until-end stream of table "t" from from and returns
// its messages.
func streamAll(t *testing.T, svc *Service, from string, failOnGap bool) ([]*wailv1.SubscribeResponse, error) {
	t.Helper()
	var out []*wailv1.SubscribeResponse
	err := svc.Stream(t.Context(), &wailv1.SubscribeRequest{Table: "t", From: from, UntilEnd: true, FailOnGap: failOnGap},
		func() error { return nil },
		func(m *wailv1.SubscribeResponse) error { out = append(out, m); return nil })
	return out, err
}

// cursorVersion is the version byte of a cursor.
func cursorVersion(t *testing.T, c string) byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(c, cursorPrefix))
	if err != nil || len(b) == 0 {
		t.Fatalf("cursor %q: %v", c, err)
	}
	return b[0]
}

// TestCursorVersionByLog: a log whose topics have ids (Kafka) gets
// version 4 cursors, with the fingerprint of the event topic's id; the
// embedded log, which has none, gets version 3 cursors as before (the
// table's creation time known), byte for byte.
func TestCursorVersionByLog(t *testing.T) {
	t.Parallel()
	const created = 1_796_000_000_000_000
	el, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	ml := &idLog{Log: newMemLog()}
	ml.setID(7)
	for _, tc := range []struct {
		name    string
		log     intentlog.Log
		version byte
		topic   uint64
	}{
		{"embedded", el, cursorVersion3, 0},
		{"with ids", ml, cursorVersion4, TopicPrint(intentlog.TopicID{15: 7})},
	} {
		bus := New(tc.log)
		if err := bus.CreateTable(t.Context(), "t", 2, 0); err != nil {
			t.Fatal(err)
		}
		upserts(t, bus, 1, 2)
		svc := NewService(bus, func(string) (int32, bool) { return 2, true }).WithTableCreated(func(string) int64 { return created })
		msgs, err := streamAll(t, svc, "beginning", false)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("%s: %d messages, %v", tc.name, len(msgs), err)
		}
		for _, m := range msgs {
			c, perr := ParseCursor(m.Cursor, "t", 2)
			if v := cursorVersion(t, m.Cursor); v != tc.version || perr != nil || c.Topic != tc.topic || c.Created != created {
				t.Errorf("%s: cursor version %d, %+v, %v; want version %d, topic %x", tc.name, v, c, perr, tc.version, tc.topic)
			}
			want := Cursor{Table: "t", Offsets: c.Offsets, Created: created}.String()
			if tc.topic == 0 && m.Cursor != want {
				t.Errorf("%s: cursor %q, want %q (version 3, as before)", tc.name, m.Cursor, want)
			}
		}
	}
}

// TestCursorOfReplacedTopicBelowRetention: the new topic of a cursor's
// table (another id) whose start retention moved up: a stream from the
// cursor starts at the new topic's offset 0, so the offsets below the
// log's start are a retention gap, told (or, with fail_on_gap, the
// stream's failure), as for any cursor below the start; the WARN says
// that the topic was replaced.
func TestCursorOfReplacedTopicBelowRetention(t *testing.T) {
	t.Parallel()
	ml := newMemLog()
	l := &idLog{Log: ml}
	l.setID(1)
	bus := New(l)
	ctx := t.Context()
	if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	svc := NewService(bus, func(string) (int32, bool) { return 1, true }).
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	upserts(t, bus, 1, 2, 3)
	old, err := streamAll(t, svc, "beginning", false)
	if err != nil || len(old) != 4 {
		t.Fatalf("the old topic: %d messages, %v", len(old), err)
	}
	stale := old[len(old)-1].Cursor // at 3
	if err := l.DeleteTopic(ctx, Topic("t")); err != nil {
		t.Fatal(err)
	}
	if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	l.setID(2)
	upserts(t, bus, 10, 11, 12, 13, 14, 15)
	ml.retain(Topic("t"), 0, 2)
	msgs, err := streamAll(t, svc, stale, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 || msgs[0].Gap == nil || msgs[0].Gap.From != 0 || msgs[0].Gap.To != 2 {
		t.Fatalf("from the cursor of the replaced topic: %v; want the gap [0, 2) first", msgs)
	}
	var versions []uint64
	for _, m := range msgs {
		if m.Event != nil {
			versions = append(versions, m.Event.Version)
		}
	}
	if len(versions) != 4 || versions[0] != 12 {
		t.Errorf("events %v after the gap, want 12 to 15", versions)
	}
	if s := logs.String(); !strings.Contains(s, "deleted and created again") || !strings.Contains(s, "nothing is skipped") {
		t.Errorf("logged:\n%s", s)
	}
	if _, err := streamAll(t, svc, stale, true); !errors.Is(err, ErrRetentionGap) {
		t.Errorf("with fail_on_gap: %v, want ErrRetentionGap", err)
	}
	// A cursor of the topic now is taken at its offsets.
	now := Cursor{Table: "t", Offsets: []int64{4}, Topic: TopicPrint(intentlog.TopicID{15: 2})}.String()
	if msgs, err := streamAll(t, svc, now, false); err != nil || len(msgs) != 3 || msgs[0].Event.Version != 14 {
		t.Errorf("from a cursor of the topic now: %v, %v; want 14 and 15", msgs, err)
	}
}

// TestGroupResetToCursorOfReplacedTopic: a group reset to the cursor of
// an event topic deleted and created again since commits the new
// topic's start (every event of it came after the cursor), not the
// cursor's offsets, and says so.
func TestGroupResetToCursorOfReplacedTopic(t *testing.T) {
	t.Parallel()
	el, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	l := &idLog{Log: el}
	l.setID(2)
	bus := New(l)
	if err := bus.CreateTable(t.Context(), "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	upserts(t, bus, 1, 2, 3)
	logs := &logbuf.Buffer{}
	svc := NewService(bus, func(string) (int32, bool) { return 1, true }).WithGroups(group.New(el, time.Minute)).
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(svc.Close)
	for _, tc := range []struct {
		id   byte
		want int64
	}{{1, 0}, {2, 2}} { // a cursor of the topic before, of the topic now
		to := Cursor{Table: "t", Offsets: []int64{2}, Topic: TopicPrint(intentlog.TopicID{15: tc.id})}.String()
		parts, err := svc.ResetGroup(t.Context(), "t", "g", to)
		if err != nil || len(parts) != 1 || parts[0].Committed != tc.want {
			t.Errorf("reset to a cursor of topic id %d: %+v, %v; want committed %d", tc.id, parts, err, tc.want)
		}
	}
	if s := logs.String(); strings.Count(s, "consumer group reset: the cursor's event topic was deleted and created again") != 1 || !strings.Contains(s, "group=g") {
		t.Errorf("logged:\n%s", s)
	}
}
