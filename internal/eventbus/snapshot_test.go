package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/readahead"
	"github.com/wail-cdc/wail/internal/store"
)

// memSource is a SnapshotSource of table "t" in memory: rows by key;
// missing keys are listed by the scan but gone when read (deleted and
// purged meanwhile). Its Get fails unless asked at the strongest level.
type memSource struct {
	rows    map[string]store.Row
	missing map[string]bool
	levels  []string
	getErr  error
	mu      sync.Mutex
	scans   []int // each scan's limit
}

func (s *memSource) ScanKeys(_ context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	s.mu.Lock()
	s.scans = append(s.scans, limit)
	s.mu.Unlock()
	if table != "t" || limit <= 0 {
		return nil, fmt.Errorf("scan of %s, limit %d", table, limit)
	}
	var keys []string
	for k := range s.rows {
		keys = append(keys, k)
	}
	for k := range s.missing {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []store.KeyVersion
	for _, k := range keys {
		if k > string(after) && len(out) < limit {
			out = append(out, store.KeyVersion{Key: []byte(k), Version: s.rows[k].Version})
		}
	}
	return out, nil
}

func (s *memSource) Get(_ context.Context, _ string, key []byte, level store.Level) (store.Row, bool, error) {
	if s.getErr != nil {
		return store.Row{}, false, s.getErr
	}
	if int(level) != len(s.levels)-1 {
		return store.Row{}, false, fmt.Errorf("read at level %d, want the strongest (%d)", level, len(s.levels)-1)
	}
	r, ok := s.rows[string(key)]
	return r, ok, nil
}

func (s *memSource) Levels() []string { return s.levels }

// snapshotService is a Service whose table "t" (2 partitions, on an
// embedded log) has the rows of src; its snapshots read chunks of
// chunkKeys keys and poll the resolvers' offsets every millisecond.
func snapshotService(t *testing.T, src *memSource, chunkKeys int, typer Typer, drifted func(context.Context, string, []DriftedRow) error) (*Service, *pollLog) {
	t.Helper()
	el, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	log := &pollLog{Log: el, polled: make(chan struct{}, 1)}
	bus := New(log)
	if typer != nil {
		bus.SetTyper(typer)
	}
	if err := bus.CreateTable(t.Context(), "t", 2, 0); err != nil {
		t.Fatal(err)
	}
	if err := log.CreateTopic(t.Context(), intent.Topic("t"), 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := NewService(bus, func(table string) (int32, bool) { return 2, table == "t" }).WithSnapshots(Snapshots{
		Source: src, ResolverGroup: "resolvers", ChunkKeys: chunkKeys, Poll: time.Millisecond, Drifted: drifted})
	t.Cleanup(svc.Close)
	return svc, log
}

// snapshotOf streams a from "snapshot" stream until its first cursor
// and returns its events as "key@version op schema", the cursor's
// arrival, or the stream's error. A snapshot that never ends fails after
// a minute instead of hanging the test binary.
func snapshotOf(ctx context.Context, svc *Service) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var got []string
	over := errors.New("over")
	err := svc.Subscribe(ctx, &wailv1.SubscribeRequest{Table: "t", From: "snapshot"}, false, func(string) error { return nil },
		func(m *wailv1.SubscribeResponse) error {
			if m.Event != nil {
				if !m.Snapshot {
					return fmt.Errorf("a live event %v during the snapshot", m.Event)
				}
				got = append(got, fmt.Sprintf("%s@%d %s %d %q", m.Event.Key, m.Event.Version, m.Event.Op, m.Event.SchemaId, m.Event.Value))
			}
			if m.Cursor != "" {
				return over
			}
			return nil
		})
	if errors.Is(err, over) {
		return got, nil
	}
	if err == nil {
		err = errors.New("the stream ended before its cursor")
	}
	return got, err
}

// TestSnapshotReadsEveryChunk: a snapshot reads the table's keys in
// chunks (a last short one ends the scan), each row at the store's
// strongest level; a key listed but gone when read, and a tombstone of a
// key the stream never delivered, are left out; typed tables' rows go
// through the drift guard (the schema id they are published under; a row
// that fits no schema is left out and dead-lettered; a registry that
// cannot be read fails the snapshot), untyped tables' rows pass as they
// are.
func TestSnapshotReadsEveryChunk(t *testing.T) {
	t.Parallel()
	rows := func() map[string]store.Row {
		return map[string]store.Row{
			"k0": {Value: []byte("v0"), Version: 10, SchemaID: 11},
			"k1": {Value: []byte("drift"), Version: 11, SchemaID: 11},
			"k2": {Version: 12, Deleted: true},
			"k4": {Value: []byte("v4"), Version: 14},
		}
	}
	all := []string{`k0@10 OP_UPSERT 11 "v0"`, `k1@11 OP_UPSERT 11 "drift"`, `k4@14 OP_UPSERT 0 "v4"`}
	broken := errors.New("broken")
	for _, tc := range []struct {
		name      string
		chunkKeys int
		typer     Typer
		getErr    error
		value     string // a value k4 gets (the typer's "unavailable")
		drifted   error  // Drifted fails
		want      []string
		wantScans []int
		wantDrift []string
		wantErr   string
	}{
		{name: "chunks of 2", chunkKeys: 2, want: all, wantScans: []int{2, 2, 2}},
		{name: "chunks of 5: one full, one empty", chunkKeys: 5, want: all, wantScans: []int{5, 5}},
		{name: "one chunk", chunkKeys: 6, want: all, wantScans: []int{6}},
		{name: "the defaults (chunks of 512 keys, polled every 100ms)", want: all, wantScans: []int{512}},
		{name: "typed", chunkKeys: 2, typer: fixedTyper{7}, want: []string{`k0@10 OP_UPSERT 11 "v0"`, `k4@14 OP_UPSERT 12 "v4"`},
			wantScans: []int{2, 2, 2}, wantDrift: []string{"k1@11"}},
		{name: "a typer for other tables", chunkKeys: 2, typer: otherTables{}, want: all, wantScans: []int{2, 2, 2}},
		{name: "the registry is down", chunkKeys: 2, typer: fixedTyper{7}, value: "unavailable", wantErr: "check a row's schema: registry unavailable"},
		{name: "the table's types cannot be read", chunkKeys: 2, typer: failingTyper{broken}, wantErr: "read the table's schemas: broken"},
		{name: "dead-lettering fails", chunkKeys: 2, typer: fixedTyper{7}, drifted: broken, wantErr: "dead-letter rows that fit no schema: broken"},
		{name: "a read fails", chunkKeys: 2, getErr: broken, wantErr: "read a row: broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &memSource{rows: rows(), missing: map[string]bool{"k3": true}, levels: []string{"replica", "primary"}, getErr: tc.getErr}
			if tc.value != "" {
				src.rows["k4"] = store.Row{Value: []byte(tc.value), Version: 14}
			}
			var drift []string
			svc, _ := snapshotService(t, src, tc.chunkKeys, tc.typer, func(_ context.Context, table string, rs []DriftedRow) error {
				if len(rs) == 0 {
					t.Error("dead-lettered no rows (a chunk without drift)")
				}
				for _, r := range rs {
					if table != "t" || !errors.Is(r.Err, ErrDrift) {
						t.Errorf("dead-lettered %s of %s: %v", r.Key, table, r.Err)
					}
					drift = append(drift, fmt.Sprintf("%s@%d", r.Key, r.Version))
				}
				return tc.drifted
			})
			if tc.chunkKeys == 0 {
				svc.snapshots.Poll = 0 // the default
			}
			got, err := snapshotOf(t.Context(), svc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "snapshot of t: ") {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("snapshot\n%q, want\n%q", got, tc.want)
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			if !slices.Equal(src.scans, tc.wantScans) {
				t.Errorf("scans of %v keys, want %v", src.scans, tc.wantScans)
			}
			if fmt.Sprint(drift) != fmt.Sprint(tc.wantDrift) {
				t.Errorf("dead-lettered %v, want %v", drift, tc.wantDrift)
			}
		})
	}
}

// otherTables types no table.
type otherTables struct{}

func (otherTables) EventTypes(context.Context, string) (EventTypes, bool, error) {
	return EventTypes{}, false, nil
}

// failingTyper cannot read any table's types.
type failingTyper struct{ err error }

func (f failingTyper) EventTypes(context.Context, string) (EventTypes, bool, error) {
	return EventTypes{}, false, f.err
}

// pollLog is a log whose Committed calls are counted (polled gets a
// token on each) and can fail.
type pollLog struct {
	intentlog.Log
	polled chan struct{}
	mu     sync.Mutex
	err    error
}

func (l *pollLog) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	select {
	case l.polled <- struct{}{}:
	default:
	}
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.Log.Committed(ctx, group, topic)
}

// TestSnapshotWaitsForTheResolvers: a snapshot's end (its first cursor)
// waits until the resolvers committed past every intent logged when its
// chunk was read, partition by partition: not while one partition is
// short by one, at once when each reached its end exactly; a partition
// without intents is not waited for. A failure to read the committed
// offsets fails the stream.
func TestSnapshotWaitsForTheResolvers(t *testing.T) {
	t.Parallel()
	src := &memSource{rows: map[string]store.Row{"k0": {Value: []byte("v0"), Version: 10}}, levels: []string{"primary"}}
	svc, log := snapshotService(t, src, 2, nil, nil)
	ctx := t.Context()
	// intents on one partition only (one key): the other's end is 0
	var recs []*intentlog.Record
	for range 3 {
		recs = append(recs, &intentlog.Record{Key: []byte("k0"), Value: []byte("intent")})
	}
	if err := log.Append(ctx, intent.Topic("t"), recs); err != nil {
		t.Fatal(err)
	}
	p := intentlog.Partition([]byte("k0"), 2)
	type result struct {
		got []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := snapshotOf(ctx, svc)
		done <- result{got, err}
	}()
	waitPolls := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-log.polled:
			case r := <-done:
				t.Fatalf("the snapshot ended (%v, %v) before the resolvers committed past its intents", r.got, r.err)
			case <-ctx.Done():
				t.Fatal("the committed offsets were not polled")
			}
		}
	}
	waitPolls(3)
	if err := log.Commit(ctx, "resolvers", intent.Topic("t"), map[int32]int64{p: 2}); err != nil {
		t.Fatal(err)
	}
	waitPolls(3) // one short: still waiting
	if err := log.Commit(ctx, "resolvers", intent.Topic("t"), map[int32]int64{p: 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.got) != 1 || r.got[0] != `k0@10 OP_UPSERT 0 "v0"` {
			t.Fatalf("snapshot %q, %v", r.got, r.err)
		}
	case <-ctx.Done():
		t.Fatal("the snapshot did not end once the resolvers committed its intents")
	}

	log.mu.Lock()
	log.err = errors.New("group coordinator gone")
	log.mu.Unlock()
	if got, err := snapshotOf(ctx, svc); err == nil || !strings.Contains(err.Error(), "read the resolvers' committed offsets: group coordinator gone") {
		t.Fatalf("committed offsets unreadable: %q, %v", got, err)
	}
}

// TestSnapshotChunkTakesItsBytes: a chunk of rows takes its keys' and
// values' bytes from the stream's budget (released once sent).
func TestSnapshotChunkTakesItsBytes(t *testing.T) {
	t.Parallel()
	src := &memSource{rows: map[string]store.Row{"k0": {Value: []byte("value0"), Version: 1}, "key1": {Value: []byte("v1"), Version: 2}},
		levels: []string{"primary"}}
	svc, _ := snapshotService(t, src, 2, nil, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a snapshot that hangs fails the test
	defer cancel()
	out := make(chan snapshotMsg, 8)
	done := make(chan error, 1)
	go func() { done <- svc.snapshot(ctx, "t", 2, readahead.NewPool(0).Stream(1<<20), out) }()
	select {
	case m := <-out:
		if want := int64(len("k0value0key1v1")); len(m.rows) != 2 || m.size != want {
			t.Fatalf("a chunk of %d rows took %d bytes, want 2 rows taking %d", len(m.rows), m.size, want)
		}
	case err := <-done:
		t.Fatalf("the snapshot ended (%v) before its first chunk", err)
	case <-ctx.Done():
		t.Fatal("no chunk")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the snapshot ended with %v, want nil (its stream ended)", err)
	}
}

// TestSnapshotEndsOnlyAfterItsLastChunk: the snapshot's end (scanned,
// which sends the stream's first cursor) follows the settling of the
// scan's last chunk, and never comes when the chunks stop without it (the
// scan failed: pending closes as the scanner returns its error, before
// the stream's context ends; a cursor then would tell the client it has
// every row when the later chunks were never read).
func TestSnapshotEndsOnlyAfterItsLastChunk(t *testing.T) {
	t.Parallel()
	src := &memSource{levels: []string{"primary"}}
	svc, _ := snapshotService(t, src, 2, nil, nil)
	for _, tc := range []struct {
		name   string
		chunks []pendingChunk
		want   string // the messages sent: s settle, e the end
	}{
		{"the scan failed after a chunk", []pendingChunk{{keys: []string{"k0", "k1"}}}, "s"},
		{"the scan failed before any chunk", nil, ""},
		{"the scan is over", []pendingChunk{{keys: []string{"k0", "k1"}}, {keys: []string{"k2"}, last: true}}, "sse"},
		{"one empty last chunk", []pendingChunk{{last: true}}, "se"},
	} {
		pending := make(chan pendingChunk, len(tc.chunks))
		for _, ch := range tc.chunks {
			ch.intents = []int64{0, 0}
			pending <- ch
		}
		close(pending)
		out := make(chan snapshotMsg, len(tc.chunks)+1)
		if err := svc.settleChunks(t.Context(), "t", 2, pending, make(chan struct{}, 2), out); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		close(out)
		got := ""
		for m := range out {
			switch {
			case m.settle != nil:
				got += "s"
			case m.scanned:
				got += "e"
			}
		}
		if got != tc.want {
			t.Errorf("%s: sent %q, want %q", tc.name, got, tc.want)
		}
	}
}
