package eventbus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// realLog is a test log of each kind the server runs on, and how to
// publish on it in a transaction (Kafka: the records and its commit
// marker take offsets, as the resolver's do).
type realLog struct {
	log      intentlog.Log
	transact func(ctx context.Context, topic string, recs []*intentlog.Record) error
}

func openRealLog(t *testing.T, kind string) realLog {
	t.Helper()
	switch kind {
	case "embedded":
		l, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return realLog{log: l}
	}
	l, err := kafka.Open(context.Background(), kafka.Options{Brokers: servicetest.KafkaBrokers(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	opts := kafka.MemberOptions{Group: "wail-test-" + uniq(), InstanceID: "t"}
	m, err := l.Join(opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		m.Close(context.Background())
	})
	return realLog{log: l, transact: func(ctx context.Context, topic string, recs []*intentlog.Record) error {
		mu.Lock()
		defer mu.Unlock()
		err := m.Transact(ctx, 0, map[string][]*intentlog.Record{topic: recs}, nil)
		if errors.Is(err, kafka.ErrFenced) {
			// As the resolver does: the member joins again (its
			// instance id fences the old one's producers); err still
			// says that this transaction's outcome is unknown.
			m.Close(context.Background())
			m2, jerr := l.Join(opts)
			if jerr != nil {
				return fmt.Errorf("%w; joining again: %w", err, jerr)
			}
			m = m2
		}
		return err
	}}
}

func uniq() string { return fmt.Sprintf("%x", time.Now().UnixNano()) }

// eventServer serves a Service of bus, whose tables have n partitions.
func eventServer(t *testing.T, bus *Bus, n int32, snaps Snapshots) wailv1connect.EventServiceClient {
	t.Helper()
	svc := NewService(bus, func(string) (int32, bool) { return n, true }).WithSnapshots(snaps)
	mux := http.NewServeMux()
	_, closeAll := serveEvents(mux, svc, APILimits{})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { closeAll(); srv.Close() })
	return wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL)
}

// readToEnd subscribes with until_end and returns the events and the
// stream's last cursor.
func readToEnd(ctx context.Context, t *testing.T, c wailv1connect.EventServiceClient, table, from string) ([]*wailv1.SubscribeResponse, string) {
	t.Helper()
	s, err := c.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: from, UntilEnd: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var evs []*wailv1.SubscribeResponse
	last := ""
	for s.Receive() {
		m := s.Msg()
		if m.Cursor == "" {
			t.Fatalf("a message without a cursor: %v", m)
		}
		last = m.Cursor
		if m.Event != nil {
			evs = append(evs, m)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream from %q: %v", from, err)
	}
	if last == "" {
		t.Fatalf("stream from %q ended without a cursor", from)
	}
	return evs, last
}

type at struct {
	p   int32
	off int64
}

func positions(evs []*wailv1.SubscribeResponse) []at {
	out := make([]at, len(evs))
	for i, e := range evs {
		out[i] = at{e.Partition, e.Offset}
	}
	slices.SortFunc(out, func(a, b at) int {
		if a.p != b.p {
			return int(a.p - b.p)
		}
		return int(a.off - b.off)
	})
	return out
}

// publishMixed publishes n events over keys k0..k9 from version base on,
// every third a delete (a tombstone follows it: a gap in the offsets);
// on Kafka every other call goes in a transaction (its marker: a gap).
func publishMixed(ctx context.Context, t *testing.T, rl realLog, bus *Bus, table string, base uint64, n int) {
	t.Helper()
	for i := 0; i < n; i += 5 {
		var evs []intent.Event
		for j := i; j < min(i+5, n); j++ {
			e := intent.Event{Table: table, Key: fmt.Appendf(nil, "k%d", j%10), Version: base + uint64(j), Op: intent.Upsert, Value: []byte("v")}
			if j%3 == 2 {
				e.Op, e.Value = intent.Delete, nil
			}
			evs = append(evs, e)
		}
		var err error
		if rl.transact != nil && i%10 == 0 {
			topic, recs, rerr := bus.Records(t.Context(), table, evs)
			if rerr != nil {
				t.Fatal(rerr)
			}
			err = rl.transact(ctx, topic, recs)
		} else {
			err = bus.Publish(ctx, table, evs)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestCursorResumesExactly: on each log, a stream resumed from the cursor
// of any event it delivered delivers exactly the events after it (none
// lost, none repeated), whatever the gaps in the offsets; an until-end
// stream ends at the end of what existed, and its last cursor resumes
// with what came after; a time start delivers what was appended after it.
func TestCursorResumesExactly(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"embedded", "kafka"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rl := openRealLog(t, kind)
			bus := New(rl.log)
			table := "resume_" + uniq()
			const n = 3
			if err := bus.CreateTable(ctx, table, n, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rl.log.DeleteTopic(context.Background(), Topic(table)) })
			c := eventServer(t, bus, n, Snapshots{})

			_, empty := readToEnd(ctx, t, c, table, "beginning") // nothing yet: ends at once
			publishMixed(ctx, t, rl, bus, table, 100, 40)
			all, last := readToEnd(ctx, t, c, table, "beginning")
			if len(all) != 40 {
				t.Fatalf("%d events from the beginning, want 40", len(all))
			}
			ends, err := bus.ends(ctx, table, n)
			if err != nil {
				t.Fatal(err)
			}
			var recs int64
			for _, e := range ends {
				recs += e
			}
			// 40 events, 13 tombstones; on Kafka also transaction markers
			if recs < 53 || (rl.transact != nil) != (recs > 53) {
				t.Fatalf("the partitions end at %v: not the gaps the test needs", ends)
			}
			// On Kafka a transaction's commit markers are written after its
			// commit returned (the coordinator writes them on its own), so a
			// partition's end may have moved past last by a marker since the
			// stream took it. After one until-end stream they are all in:
			// its read_committed readers pass a transaction's records only
			// once its marker is (kafka.Log.Bounds). A stream from last then
			// delivers nothing and ends at the partitions' ends.
			rest, end := readToEnd(ctx, t, c, table, last)
			// On Kafka the cursor carries the event topic's id
			// (version 4); the embedded log has none.
			var fp uint64
			if d, ok := rl.log.(intentlog.TopicIDDeleter); ok {
				ids, err := d.TopicIDs(ctx, Topic(table))
				if err != nil {
					t.Fatal(err)
				}
				fp = TopicPrint(ids[Topic(table)])
			}
			want := Cursor{Table: table, Offsets: ends, Topic: fp}.String()
			if len(rest) != 0 || end != want || (rl.transact == nil && last != want) {
				t.Errorf("from the last cursor: %d events, then a cursor that is not the partitions' ends %v", len(rest), ends)
			}
			last = end
			if got, _ := readToEnd(ctx, t, c, table, empty); !slices.Equal(positions(got), positions(all)) {
				t.Errorf("from the empty table's cursor: %d events, want all 40", len(got))
			}
			for i, e := range all {
				got, end := readToEnd(ctx, t, c, table, e.Cursor)
				if want := positions(all[i+1:]); !slices.Equal(positions(got), want) {
					t.Fatalf("from the cursor of event %d: got %v, want %v", i, positions(got), want)
				}
				if end != last {
					t.Fatalf("from the cursor of event %d: ends at another cursor", i)
				}
			}

			time.Sleep(20 * time.Millisecond)
			mid := time.Now()
			time.Sleep(20 * time.Millisecond)
			publishMixed(ctx, t, rl, bus, table, 200, 10)
			more, _ := readToEnd(ctx, t, c, table, last)
			if len(more) != 10 || more[0].Event.Version < 200 {
				t.Fatalf("from the last cursor: %d events, want the 10 new ones", len(more))
			}
			since, _ := readToEnd(ctx, t, c, table, mid.UTC().Format(time.RFC3339Nano))
			if !slices.Equal(positions(since), positions(more)) {
				t.Fatalf("from a time: %v, want %v", positions(since), positions(more))
			}
		})
	}
}

// TestCursorRefusedOverTheWire: a malformed cursor or one of another
// table is invalid_argument, with what is wrong; so is a snapshot with
// until_end, and a snapshot on a store that cannot list keys is
// failed_precondition.
func TestCursorRefusedOverTheWire(t *testing.T) {
	t.Parallel()
	st := newStreams(t, 2, Limits{})
	for _, tc := range []struct {
		from     string
		untilEnd bool
		code     connect.Code
		want     string
	}{
		{"cAAAA", false, connect.CodeInvalidArgument, "invalid cursor: it is too short"},
		{Cursor{Table: "u", Offsets: []int64{1, 2}}.String(), false, connect.CodeInvalidArgument, "another table"},
		{Cursor{Table: "t", Offsets: []int64{1}}.String(), false, connect.CodeInvalidArgument, "it has 1 partitions"},
		{"snapshot", true, connect.CodeInvalidArgument, "until_end does not go with"},
		{"snapshot", false, connect.CodeFailedPrecondition, "store cannot list keys"}, // no Snapshots.Source
	} {
		s, err := st.c.Subscribe(st.ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: tc.from, UntilEnd: tc.untilEnd}))
		if err == nil {
			for s.Receive() {
			}
			err = s.Err()
		}
		if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("from %q: %v, want %v saying %q", tc.from, err, tc.code, tc.want)
		}
	}
}
