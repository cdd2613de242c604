package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// eventLog returns a log whose table t (one partition) holds the events
// of values, one each, of key, at versions 1, 2, ..., and a console on it.
func eventLog(t *testing.T, key string, values ...string) http.Handler {
	t.Helper()
	ctx := context.Background()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	if err := log.CreateTopic(ctx, eventbus.Topic("t"), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i, v := range values {
		rec, err := eventbus.Encode(&intent.Event{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: uint64(i + 1), Value: []byte(v),
			IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := log.Append(ctx, eventbus.Topic("t"), recs); err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Options{Log: log, Table: func(name string) (catalog.Table, bool) {
		return catalog.Table{Name: "t", Partitions: 1}, name == "t"
	}})
	return c.Handler()
}

func history(t *testing.T, h http.Handler, key string) console.History {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/api/history?table=t&key="+key, nil))
	var out console.History
	if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != http.StatusOK || err != nil {
		t.Fatalf("history: %d %s %v", w.Code, w.Body, err)
	}
	return out
}

// TestHistoryOfHotKey: the history of a key written far more often than
// the page shows sends the newest events only, and says how many older
// ones it left out (it sent every event of the key among the partition's
// last history_records, 100000 by default: tens of megabytes held by the
// server and rendered by the browser as one table).
func TestHistoryOfHotKey(t *testing.T) {
	t.Parallel()
	const n = 1000
	values := make([]string, n)
	for i := range values {
		values[i] = strings.Repeat("v", 100)
	}
	h := history(t, eventLog(t, "hot", values...), "hot")
	if len(h.Events) != console.MaxHistoryEvents || h.Omitted != n-console.MaxHistoryEvents {
		t.Fatalf("history of a key with %d events: %d events, %d omitted; want the newest %d, %d omitted",
			n, len(h.Events), h.Omitted, console.MaxHistoryEvents, n-console.MaxHistoryEvents)
	}
	for i, e := range h.Events {
		if want := uint64(n - console.MaxHistoryEvents + i + 1); e.Version != want {
			t.Fatalf("event %d is version %d, want %d (the newest, oldest first)", i, e.Version, want)
		}
	}
	if h := history(t, eventLog(t, "k", "a", "b"), "k"); len(h.Events) != 2 || h.Omitted != 0 {
		t.Errorf("history of a key with 2 events: %+v", h)
	}
}

// TestTruncatedValueStaysText: a text value longer than the console
// shows is cut at a character, not inside one, and shows as text (cut
// inside a character, it was no longer UTF-8 and showed as 0x-hex).
func TestTruncatedValueStaysText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"ascii", strings.Repeat("a", 600), strings.Repeat("a", 512)},
		{"2-byte at the cut", "a" + strings.Repeat("é", 300), "a" + strings.Repeat("é", 255)},
		{"3-byte at the cut", strings.Repeat("€", 200), strings.Repeat("€", 170)},
		{"4-byte at the cut", strings.Repeat("𝄞", 150), strings.Repeat("𝄞", 128)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := history(t, eventLog(t, "k", tc.value), "k")
			if len(h.Events) != 1 || h.Events[0].Value != tc.want || !h.Events[0].Truncated {
				t.Errorf("value of %d bytes shown as %+v, want %q truncated", len(tc.value), h.Events, tc.want)
			}
		})
	}
}

// TestKeyShownAsItIs: a key shows as text only when its text cannot pass
// for another key: with a format character (a bidi override turns
// "gnp.exe" around, a zero-width space makes "user-42" of another key)
// or a control character (DEL, C1), it shows as 0x-hex, as in `wail
// tail`; a value shows as text unless it has control characters. A key or
// value whose text starts with "0x" shows as 0x-hex too: the text
// "0x6bff" would pass for the bytes 6b ff, which show so.
func TestKeyShownAsItIs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, key, value, wantKey, wantValue string }{
		{"plain", "user-42", `{"a":1}`, "user-42", `{"a":1}`},
		{"tab and unicode", "é\tü", "a\tb €", "é\tü", "a\tb €"},
		{"bidi override", "doc\u202egnp.exe", "v", "0x646f63e280ae676e702e657865", "v"},
		{"zero-width space", "user-4\u200b2", "v", "0x757365722d34e2808b32", "v"},
		{"byte order mark", "\ufeffk", "v", "0xefbbbf6b", "v"},
		{"DEL", "k\x7f", "v\x7f", "0x6b7f", "0x767f"},
		{"C1 control", "k\u0085", "v\u0085", "0x6bc285", "0x76c285"},
		{"newline", "k\n", "a\nb", "0x6b0a", "0x610a62"},
		{"not UTF-8", "k\xff", "v\xff", "0x6bff", "0x76ff"},
		// The text "0x6bff" would pass for the key of bytes 6b ff above
		// (a binary key: a big-endian id, a UUID's bytes).
		{"text like hex", "0x6bff", "0x6bff", "0x307836626666", "0x307836626666"},
		{"text like hex, upper case", "0X6BFF", "v", "0x305836424646", "v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := history(t, eventLog(t, tc.key, tc.value), url.QueryEscape(tc.key))
			if len(h.Events) != 1 || h.Events[0].Key != tc.wantKey || h.Events[0].Value != tc.wantValue {
				t.Errorf("key %q value %q shown as %+v, want key %q value %q", tc.key, tc.value, h.Events, tc.wantKey, tc.wantValue)
			}
		})
	}
}

// stallBounds is a log whose Bounds blocks, until its context ends,
// while stalled is open (a slow or unreachable Kafka).
type stallBounds struct {
	intentlog.Log
	stalled chan struct{}
	entered chan struct{}
}

func (l *stallBounds) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	select {
	case l.entered <- struct{}{}:
	default:
	}
	select {
	case <-l.stalled:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return l.Log.Bounds(ctx, topic, p)
}

// TestHistoriesBounded: at most console.max_histories key histories are
// read at once (each scans up to history_records records of a partition);
// past them a request is refused with 429 naming the setting, and a
// freed slot is taken again.
func TestHistoriesBounded(t *testing.T) {
	t.Parallel()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	if err := log.CreateTopic(context.Background(), eventbus.Topic("t"), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	sl := &stallBounds{Log: log, stalled: make(chan struct{}), entered: make(chan struct{}, 1)}
	h := console.New(console.Options{Log: sl, MaxHistories: 2, Table: func(name string) (catalog.Table, bool) {
		return catalog.Table{Name: "t", Partitions: 1}, name == "t"
	}}).Handler()
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/api/history?table=t&key=k", nil))
		return w
	}
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- get().Code }()
		<-sl.entered
	}
	if w := get(); w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "console.max_histories") {
		t.Fatalf("a third history while two are read: %d %s; want 429 naming console.max_histories", w.Code, w.Body)
	}
	close(sl.stalled)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("a stalled history answered %d", code)
		}
	}
	if w := get(); w.Code != http.StatusOK {
		t.Fatalf("a history once the others ended: %d %s", w.Code, w.Body)
	}
}
