package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// legacyRecord is a dead letter as wail wrote them before the DLQ format:
// the event as it was on the bus, with the error, attempts and source
// (table/partition/offset) headers.
func legacyRecord(t *testing.T, ev *wailv1.ChangeEvent, source string) *intentlog.Record {
	t.Helper()
	v, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &intentlog.Record{Key: ev.Key, Value: v, Headers: []intentlog.Header{
		{Key: legacyError, Value: []byte("gave up after 3 attempts in 1.2s: HTTP 500: boom")},
		{Key: legacyAttempts, Value: []byte("3")},
		{Key: legacySource, Value: []byte(source)},
	}}
}

// TestSinkLegacyDeadLetters: the dead letters an older wail wrote to a
// sink's topic (events with headers, before the DLQ format) are listed as
// SINK letters after the upgrade, with their cause, and settle like the
// others: one whose event the endpoint never took is redriven, one whose
// key has a newer event after it is superseded, and a snapshot row (that
// format recorded it at offset 0 of partition 0) is refused with the
// command that drops it, and dropped. A record that is neither format is
// not listed.
func TestSinkLegacyDeadLetters(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ctx := context.Background()
	// Offsets 0, 1, 2 of partition 0: the sink starts after them (latest),
	// so the endpoint only ever gets them by redrive.
	f.publish(event("a", 1), event("b", 1), event("b", 2))
	topic := DeadLetterTopic(testTable, "old")
	if err := f.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.log.Append(ctx, topic, []*intentlog.Record{
		legacyRecord(t, event("a", 1), "t/0/0"),
		legacyRecord(t, event("b", 1), "t/0/1"),
		legacyRecord(t, event("c", 7), "t/0/0"),                          // a snapshot row
		{Key: []byte("junk"), Value: []byte("not an event, no headers")}, // neither format
	}); err != nil {
		t.Fatal(err)
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "old", Url: ep.url(), Start: "latest", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	ls := letters(t, m, "old")
	if len(ls) != 3 {
		t.Fatalf("%d letters listed, want the 3 of the older format: %v", len(ls), ls)
	}
	for i, want := range []struct {
		key    string
		offset int64
	}{{"a", 0}, {"b", 1}, {"c", 0}} {
		l := ls[i].Letter
		if ls[i].Offset != int64(i) || l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK || string(l.Key) != want.key ||
			l.Sink != "old" || l.Table != testTable || l.Partition != 0 || l.EventOffset != want.offset || l.Attempts != 3 || l.HttpStatus != 500 ||
			!strings.Contains(l.Error, "HTTP 500: boom") || string(l.Event.GetKey()) != want.key || l.DeadAtUs <= 0 {
			t.Errorf("letter %d: %v", i, ls[i])
		}
	}
	var res []*wailv1.DeadLetterResolution
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		res, err = resolutions(m.Redrive(ctx, testTable, "old", dlq.Selection{Offsets: []int64{0, 1}}))
		return !errors.Is(err, ErrNotRunning)
	})
	if err != nil || len(res) != 2 ||
		res[0].Offset != 0 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || res[0].RedriveVersion != 1 ||
		res[1].Offset != 1 || res[1].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED || res[1].SupersededByVersion != 2 ||
		res[1].SupersededByOffset != 2 {
		t.Fatalf("redrive of the older format's letters: %v, %v", res, err)
	}
	if got := ep.events(); len(got) != 1 || string(got[0].Key) != "a" || got[0].Version != 1 || string(got[0].Value) != "a@1" {
		t.Fatalf("the endpoint received %v, want a@1 only", got)
	}
	if _, err := m.Redrive(ctx, testTable, "old", dlq.Selection{Offsets: []int64{2}}); !errors.Is(err, ErrCannotRedrive) ||
		!strings.Contains(err.Error(), "wail sink dlq drop t old 2") {
		t.Fatalf("redrive of an older format's snapshot row: %v, want ErrCannotRedrive saying how to drop it", err)
	}
	if len(ep.events()) != 1 {
		t.Fatal("the snapshot row was sent")
	}
	q, err := m.DeadLetters(ctx, testTable, "old")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := resolutions(q.Drop(ctx, dlq.Selection{Offsets: []int64{2}}, time.Now())); err != nil || len(res) != 1 {
		t.Fatalf("drop: %v, %v", res, err)
	}
	if ls := letters(t, m, "old"); len(ls) != 0 {
		t.Fatalf("%d letters unsettled after redrive and drop", len(ls))
	}
}

// TestLegacyLetterRejects: records that are not dead letters of the older
// format are not read as ones.
func TestLegacyLetterRejects(t *testing.T) {
	good := legacyRecord(t, event("k", 1), "my/table/3/9")
	if l := legacyLetter("s")(good); l == nil || l.Table != "my/table" || l.Partition != 3 || l.EventOffset != 9 {
		t.Fatalf("a table name with a '/': %v", l)
	}
	for name, rec := range map[string]*intentlog.Record{
		"no source":        {Key: good.Key, Value: good.Value, Headers: good.Headers[:2]},
		"no key":           {Value: good.Value, Headers: good.Headers},
		"source no fields": legacyRecord(t, event("k", 1), "t"),
		"source 2 fields":  legacyRecord(t, event("k", 1), "t/9"),
		"no table":         legacyRecord(t, event("k", 1), "/0/9"),
		"bad partition":    legacyRecord(t, event("k", 1), "t/x/9"),
		"bad offset":       legacyRecord(t, event("k", 1), "t/0/x"),
		"not an event":     {Key: good.Key, Value: []byte{0xff, 0xff}, Headers: good.Headers},
	} {
		if l := legacyLetter("s")(rec); l != nil {
			t.Errorf("%s: read as %v", name, l)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	for msg, want := range map[string]int32{
		"gave up after 3 attempts in 1.2s: HTTP 503: down": 503,
		"HTTP 400: bad": 400,
		"gave up after 2 attempts in 1s: Post \"http://x\": dial tcp: connection refused": 0,
		"HTTP 5":       0,
		"HTTP 50x: no": 0,
		"HTTP 099: no": 0,
		"":             0,
	} {
		if got := errorStatus(msg); got != want {
			t.Errorf("errorStatus(%q) = %d, want %d", msg, got, want)
		}
	}
}

// refusingSink is a sink (one event a request) whose endpoint refuses
// (400) the events of the keys refuse says, while failing is set.
type refusingSink struct {
	f       *fixture
	ep      *endpoint
	m       *Manager
	failing atomic.Bool
}

func newRefusingSink(t *testing.T, partitions int32, name string, refuse func(key string) bool) *refusingSink {
	t.Helper()
	return newRefusingSinkWith(t, partitions, name, refuse, false)
}

// newRefusingSinkWith is newRefusingSink, its process's sink groups
// shared by processes (through the fixture's catalog) when shared.
func newRefusingSinkWith(t *testing.T, partitions int32, name string, refuse func(key string) bool, shared bool) *refusingSink {
	t.Helper()
	s := &refusingSink{f: newFixture(t, partitions), ep: newEndpoint(t, "")}
	s.failing.Store(true)
	s.ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if s.failing.Load() && refuse(string(b.Events[0].Key)) {
			http.Error(w, "no", http.StatusBadRequest)
			return true
		}
		return false
	}
	if shared {
		s.m = New(Options{Backend: s.f.cat, Log: s.f.log, Run: true, Refresh: 50 * time.Millisecond,
			Table:   func(name string) (group.Table, bool) { return s.f.tbl, name == testTable },
			Sharing: &group.Sharing{Store: s.f.cat, Process: "A", Lease: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}})
		s.m.Start(context.Background())
	} else {
		s.m = s.f.manager()
	}
	t.Cleanup(s.m.Close)
	if _, _, err := s.m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: name, Url: s.ep.url(), Start: "beginning", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSinkRedriveTwiceAtOnce: two redrives of one letter at once (the
// second read it before the first settled it, then waited for the
// partition) send it once: the second finds it settled under the lock and
// returns the first's resolution.
func TestSinkRedriveTwiceAtOnce(t *testing.T) {
	s := newRefusingSink(t, 1, "twice", func(key string) bool { return key == "poison" })
	m, ep, ctx := s.m, s.ep, context.Background()
	s.f.publish(event("poison", 1))
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "twice")) == 1 })
	s.failing.Store(false)
	// Wait for the runner to hold its partition (a redrive of nothing).
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		r, err := m.runner(&wailv1.Sink{Table: testTable, Name: "twice"})
		return err == nil && r.owns(0)
	})

	var (
		mu      sync.Mutex
		waiting = make(chan struct{}) // the second redrive waits for the lock
		second  struct {
			res []*wailv1.DeadLetterResolution
			err error
		}
		secondDone = make(chan struct{})
		locks      int
	)
	beforeLock = func() {
		mu.Lock()
		defer mu.Unlock()
		if locks++; locks == 2 {
			close(waiting)
		}
	}
	sent := 0
	beforeResend = func() {
		if sent++; sent > 1 {
			return
		}
		go func() {
			defer close(secondDone)
			second.res, second.err = resolutions(m.Redrive(ctx, testTable, "twice", dlq.Selection{All: true}))
		}()
		<-waiting // it read the letter unsettled, and is about to wait for the partition
	}
	defer func() { beforeLock, beforeResend = func() {}, func() {} }()
	first, err := resolutions(m.Redrive(ctx, testTable, "twice", dlq.Selection{All: true}))
	<-secondDone
	if err != nil || second.err != nil || len(first) != 1 || len(second.res) != 1 ||
		first[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || !proto.Equal(first[0], second.res[0]) {
		t.Fatalf("two redrives at once: %v, %v and %v, %v; want both the one resolution", first, err, second.res, second.err)
	}
	if n := received(ep, "poison", 1); n != 1 || sent != 1 {
		t.Fatalf("poison@1 received %d times (sent %d), want once", n, sent)
	}
}

// keyIn returns a key of prefix that lands on partition p of n.
func keyIn(t *testing.T, prefix string, p, n int32) string {
	t.Helper()
	for i := range 1000 {
		if k := fmt.Sprintf("%s%d", prefix, i); intentlog.Partition([]byte(k), n) == p {
			return k
		}
	}
	t.Fatalf("no key of prefix %s on partition %d of %d", prefix, p, n)
	return ""
}

// TestSinkRedriveElsewhere: redrive --all in a process that delivers only
// some of the sink's partitions (here partition 1 was revoked from it)
// redrives the letters of the others, leaves those of partition 1
// unsettled and unsent, and says so (ErrNotRunning naming partition 1);
// once it delivers partition 1 again, a redrive sends the rest.
func TestSinkRedriveElsewhere(t *testing.T) {
	s := newRefusingSink(t, 2, "e", func(key string) bool { return strings.HasPrefix(key, "x") })
	m, ep, ctx := s.m, s.ep, context.Background()
	k0, k1 := keyIn(t, "x", 0, 2), keyIn(t, "x", 1, 2)
	s.f.publish(event(k0, 1), event(k1, 1))
	waitFor(t, "the dead letters", time.Minute, func() bool { return len(letters(t, m, "e")) == 2 })
	s.failing.Store(false)
	var r *runner
	waitFor(t, "the sink to hold both partitions", time.Minute, func() bool {
		var err error
		r, err = m.runner(&wailv1.Sink{Table: testTable, Name: "e"})
		return err == nil && r.owns(0) && r.owns(1)
	})
	r.pmu.Lock()
	sess, epoch := r.sess, r.epochs[1]
	r.pmu.Unlock()
	r.granted(sess, group.Message{Revoked: []int32{1}}) // as when another process takes it

	res, err := resolutions(m.Redrive(ctx, testTable, "e", dlq.Selection{All: true}))
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "partitions [1]") || len(res) != 1 ||
		res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive --all with partition 1 delivered elsewhere: %v, %v; want partition 0's letter redriven and ErrNotRunning naming partition 1", res, err)
	}
	if received(ep, k0, 1) != 1 || received(ep, k1, 1) != 0 {
		t.Fatalf("received %s %d times and %s %d times, want once and never", k0, received(ep, k0, 1), k1, received(ep, k1, 1))
	}
	if ls := letters(t, m, "e"); len(ls) != 1 || string(ls[0].Letter.Key) != k1 {
		t.Fatalf("unsettled after the partial redrive: %v, want %s's letter", ls, k1)
	}

	r.granted(sess, group.Message{Granted: []group.Grant{{Partition: 1, Epoch: epoch}}})
	if res, err := resolutions(m.Redrive(ctx, testTable, "e", dlq.Selection{All: true})); err != nil || len(res) != 1 || received(ep, k1, 1) != 1 {
		t.Fatalf("redrive once partition 1 is back: %v, %v (%s received %d times)", res, err, k1, received(ep, k1, 1))
	}
}

// FuzzLegacyLetter: any record (value and source header) is read as a
// letter of the older format, or not, without a panic; a letter read has
// the record's key and its event.
func FuzzLegacyLetter(f *testing.F) {
	v, _ := proto.Marshal(event("k", 1))
	f.Add(v, "t/0/0")
	f.Add(v, "my/table/3/9")
	f.Add([]byte{0xff}, "t/x/")
	f.Add([]byte{}, "//")
	f.Fuzz(func(t *testing.T, value []byte, source string) {
		rec := &intentlog.Record{Key: []byte("k"), Value: value, Headers: []intentlog.Header{{Key: legacySource, Value: []byte(source)}}}
		if l := legacyLetter("s")(rec); l != nil && (string(l.Key) != "k" || l.Event == nil || l.Table == "") {
			t.Fatalf("%q %q: read as %v", value, source, l)
		}
	})
}
