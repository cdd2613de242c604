package dlq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// table is a one-partition table "t" with a store, a bus and no resolver:
// the test commits the intent offsets itself.
type table struct {
	log   intentlog.Log
	store *pebble.Store
	bus   *eventbus.Bus
	q     *Queue
	o     reconcile.Options
	t     reconcile.Table
}

func newTable(t *testing.T) *table {
	t.Helper()
	log := openLog(t)
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	bus := eventbus.New(log)
	if err := st.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := log.CreateTopic(ctx, intent.Topic("t"), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	return &table{log: log, store: st, bus: bus, q: NewQueue(log, "t", 0), t: reconcile.Table{Name: "t", Partitions: 1},
		o: reconcile.Options{Log: log, Bus: bus, Store: st, Group: "g", CatchUp: time.Second}}
}

func (tb *table) state(t *testing.T, key string, version uint64, published uint64) {
	t.Helper()
	ctx := t.Context()
	if _, err := tb.store.Apply(ctx, "t", []store.Mutation{{Key: []byte(key), Value: []byte("v"), Version: version}}); err != nil {
		t.Fatal(err)
	}
	if published > 0 {
		e := intent.Event{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: published, Value: []byte("v")}
		if err := tb.bus.Publish(ctx, "t", []intent.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
}

// resolved commits the intent log's end (as a resolver that caught up).
func (tb *table) resolved(t *testing.T) {
	t.Helper()
	_, end, err := tb.log.Bounds(t.Context(), intent.Topic("t"), 0)
	if err == nil {
		err = tb.log.Commit(t.Context(), "g", intent.Topic("t"), map[int32]int64{0: end})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (tb *table) intents(t *testing.T) []intent.Intent {
	t.Helper()
	_, end, _ := tb.log.Bounds(t.Context(), intent.Topic("t"), 0)
	var out []intent.Intent
	rd, err := tb.log.NewReader(intent.Topic("t"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			in, err := intent.UnmarshalIntent(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, in)
		}
	}
	return out
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "behind", 50, 30) // stored 50, last event 30
	tb.state(t, "covered", 60, 60)
	tb.resolved(t)
	offs := appendLetters(t, tb.log, letter("behind", 0), letter("covered", 0), letter("other", 0))
	got, err := tb.q.Redrive(ctx, Selection{Offsets: []int64{offs[0], offs[1], offs[0]}}, tb.o, tb.t)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Resolutions) != 2 || got.Gap != nil {
		t.Fatalf("resolutions %v, gap %v", got.Resolutions, got.Gap)
	}
	want := map[int64]uint64{offs[0]: 50, offs[1]: 0}
	for _, r := range got.Resolutions {
		if r.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || r.RedriveVersion != want[r.Offset] || r.AtUs == 0 {
			t.Errorf("resolution %v, want redriven with version %d", r, want[r.Offset])
		}
	}
	ins := tb.intents(t)
	if len(ins) != 1 || string(ins[0].Key) != "behind" || ins[0].Version != 50 || ins[0].PublishedFloor != 30 || !strings.HasPrefix(ins[0].ID, "redrive-") {
		t.Fatalf("intents logged: %+v", ins)
	}
	// A retry changes nothing and answers the same.
	tb.resolved(t)
	again, err := tb.q.Redrive(ctx, Selection{Offsets: []int64{offs[0], offs[1]}}, tb.o, tb.t)
	if err != nil || len(again.Resolutions) != 2 || again.Resolutions[0].RedriveVersion != 50 {
		t.Fatalf("retry: %v, %v", again.Resolutions, err)
	}
	if n := len(tb.intents(t)); n != 1 {
		t.Errorf("a retry logged %d intents in all, want 1", n)
	}
	left, _, err := tb.q.List(ctx, ListOptions{After: -1})
	if err != nil || len(left) != 1 || left[0].Offset != offs[2] {
		t.Errorf("unsettled after redrive: %v, %v", offsetsOf(left), err)
	}
	// Unknown offsets: nothing happens.
	if _, err := tb.q.Redrive(ctx, Selection{Offsets: []int64{offs[2], 999}}, tb.o, tb.t); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown offset: %v", err)
	}
	if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != 1 {
		t.Errorf("a failed request settled letters: %v", offsetsOf(left))
	}
	for _, sel := range []Selection{{}, {All: true, Offsets: []int64{1}}, {Offsets: []int64{-3}}, {Offsets: []int64{-1}}, {Offsets: make([]int64, MaxLimit+1)}} {
		if _, err := tb.q.Redrive(ctx, sel, tb.o, tb.t); !errors.Is(err, ErrBadSelection) {
			t.Errorf("selection %+v: %v, want ErrBadSelection", sel, err)
		}
	}
}

// TestRedriveNotCaughtUp: when the resolver has not caught up, redrive
// logs nothing and settles nothing.
func TestRedriveNotCaughtUp(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	tb.state(t, "k", 5, 0)
	in := intent.Intent{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 5, ID: "w"}
	b, _ := in.Marshal()
	if err := tb.log.Append(t.Context(), intent.Topic("t"), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		t.Fatal(err)
	}
	appendLetters(t, tb.log, letter("k", 0))
	tb.o.CatchUp = 30 * time.Millisecond
	if _, err := tb.q.Redrive(t.Context(), Selection{All: true}, tb.o, tb.t); !errors.Is(err, reconcile.ErrNotCaughtUp) {
		t.Fatalf("err = %v", err)
	}
	if left, _, _ := tb.q.List(t.Context(), ListOptions{After: -1}); len(left) != 1 {
		t.Errorf("unsettled %v, want the letter", offsetsOf(left))
	}
	if n := len(tb.intents(t)); n != 1 {
		t.Errorf("%d intents, want the write's only", n)
	}
}

func TestRedriveGapAndReconcile(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "lost", 40, 0)
	tb.resolved(t)
	offs := appendLetters(t, tb.log, gap(0), letter("lost", 0), gap(0))
	got, err := tb.q.Redrive(ctx, Selection{Offsets: []int64{offs[0]}}, tb.o, tb.t)
	if err != nil {
		t.Fatal(err)
	}
	if got.Gap == nil || got.Gap.Scanned != 1 || got.Gap.Behind != 1 || len(got.Resolutions) != 1 || got.Resolutions[0].Offset != offs[0] {
		t.Fatalf("gap redrive: %+v, %+v", got.Resolutions, got.Gap)
	}
	if ins := tb.intents(t); len(ins) != 1 || ins[0].Version != 40 {
		t.Fatalf("intents %+v", ins)
	}
	// Reconcile settles the remaining GAP letter, not the key's letter.
	tb.resolved(t)
	r, err := tb.q.Reconcile(ctx, tb.o, tb.t)
	rep, res := r.Report, r.Settled
	if err != nil || rep.Scanned != 1 || len(res) != 1 || res[0].Offset != offs[2] {
		t.Fatalf("reconcile: %+v %v %v", rep, res, err)
	}
	left, _, _ := tb.q.List(ctx, ListOptions{After: -1})
	if len(left) != 1 || left[0].Offset != offs[1] {
		t.Errorf("unsettled %v, want the key's letter %d", offsetsOf(left), offs[1])
	}
}

func TestDrop(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	offs := appendLetters(t, tb.log, letter("a", 0), letter("b", 0), gap(0))
	at := time.UnixMicro(1234)
	first, err := resolutions(tb.q.Drop(ctx, Selection{Offsets: []int64{offs[1]}}, at))
	if err != nil || len(first) != 1 || first[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED || first[0].AtUs != 1234 {
		t.Fatalf("drop b: %v, %v", first, err)
	}
	all, err := resolutions(tb.q.Drop(ctx, Selection{All: true}, at))
	if err != nil || len(all) != 2 || all[0].Offset != offs[0] || all[1].Offset != offs[2] {
		t.Fatalf("drop all: %v, %v", all, err)
	}
	if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != 0 {
		t.Errorf("unsettled after drop --all: %v", offsetsOf(left))
	}
	if again, err := resolutions(tb.q.Drop(ctx, Selection{All: true}, at)); err != nil || len(again) != 0 {
		t.Errorf("drop --all of nothing: %v, %v", again, err)
	}
	if n := len(tb.intents(t)); n != 0 {
		t.Errorf("drop logged %d intents", n)
	}
}

// retainedLog reports the event partition's start one past the real one,
// as if retention had removed its first event.
type retainedLog struct{ intentlog.Log }

func (l retainedLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	start, end, err := l.Log.Bounds(ctx, topic, p)
	if topic == eventbus.Topic("t") && end > 0 {
		start = max(start, 1)
	}
	return start, end, err
}

// TestRedriveExpired: a key letter whose key has no event left on the bus
// and a stored version older than the retained events (reconcile's
// "expired": publishing could repeat a version) is left unsettled, with
// an error saying what to do; it was settled "redriven, nothing to
// publish", its write never got an event and the letter no longer said so.
func TestRedriveExpired(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	old := hlc.At(time.Now().Add(-2 * time.Hour))
	gone := intent.Event{Table: "t", Key: []byte("gone"), Op: intent.Upsert, Version: 7, Value: []byte("v")}
	if err := tb.bus.Publish(ctx, "t", []intent.Event{gone}); err != nil { // offset 0, "removed by retention"
		t.Fatal(err)
	}
	if _, err := tb.store.Apply(ctx, "t", []store.Mutation{{Key: []byte("old"), Value: []byte("v"), Version: old}}); err != nil {
		t.Fatal(err)
	}
	tb.state(t, "behind", 50, 30)
	tb.resolved(t)
	tb.o.Bus = eventbus.New(retainedLog{tb.log})
	tb.o.EventRetention = time.Hour
	// A snapshot's letter of the old row holds no intents: settled.
	snap := &wailv1.DeadLetter{Table: "t", Key: []byte("old"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT, SnapshotVersion: old}
	offs := appendLetters(t, tb.log, letter("old", 0), letter("behind", 0), snap)
	got, err := tb.q.Redrive(ctx, Selection{All: true}, tb.o, tb.t)
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "wail dlq drop t "+strconv.FormatInt(offs[0], 10)+"`") {
		t.Fatalf("redrive: %v, want ErrExpired naming the drop", err)
	}
	if len(got.Resolutions) != 2 || got.Resolutions[0].Offset != offs[1] || got.Resolutions[0].RedriveVersion != 50 || got.Resolutions[1].Offset != offs[2] {
		t.Errorf("resolutions %v, want the behind key's and the snapshot's", got.Resolutions)
	}
	left, _, _ := tb.q.List(ctx, ListOptions{After: -1})
	if len(left) != 1 || left[0].Offset != offs[0] {
		t.Errorf("unsettled %v, want the expired key's letter %d", offsetsOf(left), offs[0])
	}
}

// holdLog holds the first Committed call (a fence's) until release is
// closed, after closing held.
type holdLog struct {
	intentlog.Log
	once          sync.Once
	held, release chan struct{}
}

func (l *holdLog) Committed(ctx context.Context, g, topic string) (map[int32]int64, error) {
	l.once.Do(func() {
		close(l.held)
		<-l.release
	})
	return l.Log.Committed(ctx, g, topic)
}

// TestDropDuringRedrive: a drop that settles a letter while a redrive that
// read it unsettled is resolving its key (held in its fence) counts (the
// first resolution does); the redrive answers the letter dropped, as
// `wail dlq show` tells it. It answered "redriven", for a letter the topic
// holds dropped.
func TestDropDuringRedrive(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "k", 50, 30)
	tb.resolved(t)
	offs := appendLetters(t, tb.log, letter("k", 0))
	hl := &holdLog{Log: tb.log, held: make(chan struct{}), release: make(chan struct{})}
	tb.o.Log = hl
	type result struct {
		got Redriven
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := tb.q.Redrive(ctx, Selection{Offsets: offs}, tb.o, tb.t)
		done <- result{got, err}
	}()
	<-hl.held
	if _, err := tb.q.Drop(ctx, Selection{Offsets: offs}, time.Now()); err != nil {
		t.Fatal(err)
	}
	close(hl.release)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.got.Resolutions) != 1 || r.got.Resolutions[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
		t.Errorf("redrive answered %v, want the drop's resolution (the first one)", r.got.Resolutions)
	}
	e, err := tb.q.Get(ctx, offs[0])
	if err != nil || e.Resolution.GetAction() != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
		t.Errorf("the letter: %v, %v", e, err)
	}
}

// badKeyStore fails every read of the key "bad", as the row a READ letter
// was written for may still fail.
type badKeyStore struct{ *pebble.Store }

func (s badKeyStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if string(key) == "bad" {
		return store.Row{}, false, errors.New("row does not decode")
	}
	return s.Store.Get(ctx, table, key, level)
}

// TestRedriveUnreadable: a letter whose key still cannot be read (a READ
// letter's poison row) is left unsettled and named, with the command that
// drops it, and the other letters are redriven. The read's error failed
// the whole request: no letter of its page (up to 1000) was redriven, and
// `redrive --all` could never get past it.
func TestRedriveUnreadable(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "bad", 40, 0)
	tb.state(t, "good", 50, 30)
	tb.resolved(t)
	tb.o.Store = badKeyStore{tb.store}
	offs := appendLetters(t, tb.log, letter("bad", 0), letter("good", 0))
	got, err := tb.q.Redrive(ctx, Selection{All: true}, tb.o, tb.t)
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "row does not decode") ||
		!strings.Contains(err.Error(), "wail dlq drop t "+strconv.FormatInt(offs[0], 10)) {
		t.Fatalf("redrive: %v, want ErrUnreadable naming the read's error and the drop", err)
	}
	if len(got.Resolutions) != 1 || got.Resolutions[0].Offset != offs[1] || got.Resolutions[0].RedriveVersion != 50 {
		t.Errorf("resolutions %v, want the good key's", got.Resolutions)
	}
	if ins := tb.intents(t); len(ins) != 1 || string(ins[0].Key) != "good" {
		t.Errorf("intents %+v, want the good key's", ins)
	}
	left, _, _ := tb.q.List(ctx, ListOptions{After: -1})
	if len(left) != 1 || left[0].Offset != offs[0] {
		t.Errorf("unsettled %v, want the bad key's letter %d", offsetsOf(left), offs[0])
	}
}

// TestReconcileUnreadable: a table reconcile goes on past a key the store
// fails to read, and fails with reconcile.ErrUnreadable once done; the GAP
// letter of that key's partition stays unsettled (the key may be one of
// the lost intents'), so is a GAP letter's redrive. Once the store reads
// the key, reconcile settles it. Before, the read's error failed the run
// for every key.
func TestReconcileUnreadable(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "bad", 40, 0)
	tb.state(t, "good", 50, 30)
	tb.resolved(t)
	healthy := tb.o.Store
	tb.o.Store = badKeyStore{tb.store}
	offs := appendLetters(t, tb.log, gap(0), gap(0))
	got, err := tb.q.Redrive(ctx, Selection{Offsets: offs[:1]}, tb.o, tb.t)
	if !errors.Is(err, reconcile.ErrUnreadable) || got.Gap == nil || got.Gap.Behind != 1 || len(got.Resolutions) != 0 {
		t.Fatalf("redrive of a GAP letter: %+v, %+v, %v; want ErrUnreadable, the good key reconciled, nothing settled", got.Resolutions, got.Gap, err)
	}
	tb.resolved(t)
	r, err := tb.q.Reconcile(ctx, tb.o, tb.t)
	rep, res := r.Report, r.Settled
	if !errors.Is(err, reconcile.ErrUnreadable) || !strings.Contains(err.Error(), "row does not decode") || rep.Unreadable != 1 || len(res) != 0 {
		t.Fatalf("reconcile: %+v, %v, %v; want ErrUnreadable and nothing settled", rep, res, err)
	}
	if ins := tb.intents(t); len(ins) != 2 || string(ins[0].Key) != "good" || string(ins[1].Key) != "good" {
		t.Errorf("intents %+v, want the good key's (one per run)", ins)
	}
	if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != 2 {
		t.Errorf("unsettled %v, want both GAP letters", offsetsOf(left))
	}
	tb.o.Store = healthy
	tb.resolved(t)
	if r, err := tb.q.Reconcile(ctx, tb.o, tb.t); err != nil || len(r.Settled) != 2 {
		t.Fatalf("reconcile with the store well: %v, %v", r.Settled, err)
	}
}

// TestRecreateDuringRedrive: a redrive of a table dropped and created
// again while it ran (held in its fence) settles none of the new table's
// letters, whose offsets start again at 0 in the new dead-letter topic.
// Before, its resolution settled the new table's letter at the offset of
// the one it redrove: that write's letter was gone with no event.
func TestRecreateDuringRedrive(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "k", 50, 30)
	tb.resolved(t)
	offs := appendLetters(t, tb.log, letter("k", 0))
	hl := &holdLog{Log: tb.log, held: make(chan struct{}), release: make(chan struct{})}
	tb.o.Log = hl
	old := NewQueue(tb.log, "t", 1) // the table created at 1 µs
	done := make(chan error, 1)
	go func() {
		_, err := old.Redrive(ctx, Selection{Offsets: offs}, tb.o, tb.t)
		done <- err
	}()
	<-hl.held
	if err := tb.log.DeleteTopic(ctx, Topic("t")); err != nil {
		t.Fatal(err)
	}
	again := appendLetters(t, tb.log, letter("new", 0))
	if again[0] != offs[0] {
		t.Fatalf("the new topic's letter is at %d, want %d", again[0], offs[0])
	}
	close(hl.release)
	<-done                                                // it may answer either way: what it appended must change nothing
	e, err := NewQueue(tb.log, "t", 2).Get(ctx, again[0]) // created again at 2 µs
	if err != nil || e.Resolution != nil {
		t.Errorf("the new table's letter: %v, %v; want it unsettled", e, err)
	}
	// Without an incarnation (older records, sink letters) a resolution
	// still settles what it names.
	if err := NewQueue(tb.log, "t", 0).Settle(ctx, []*wailv1.DeadLetterResolution{redriven(again[0], 0, time.Now())}); err != nil {
		t.Fatal(err)
	}
	if e, err := NewQueue(tb.log, "t", 2).Get(ctx, again[0]); err != nil || e.Resolution == nil {
		t.Errorf("a resolution without an incarnation: %v, %v; want the letter settled", e, err)
	}
}

// resolutions is the resolutions of an answer (a drop's), with its error.
func resolutions(a Answer, err error) ([]*wailv1.DeadLetterResolution, error) {
	return a.Resolutions, err
}

// TestReconcileDryRunSettlesNothing: a dry run of a table reconcile
// settles no GAP letter, even one whose partition it confirmed: it stays
// unsettled for the reconcile that does the work.
func TestReconcileDryRunSettlesNothing(t *testing.T) {
	t.Parallel()
	tb := newTable(t)
	ctx := t.Context()
	tb.state(t, "k", 40, 0)
	tb.resolved(t)
	offs := appendLetters(t, tb.log, gap(0))
	o := tb.o
	o.DryRun = true
	r, err := tb.q.Reconcile(ctx, o, tb.t)
	if err != nil || len(r.Settled) != 0 {
		t.Fatalf("dry run: settled %v, %v; want none, no error", r.Settled, err)
	}
	if left, _, _ := tb.q.List(ctx, ListOptions{After: -1}); len(left) != 1 || left[0].Offset != offs[0] {
		t.Errorf("unsettled after a dry run %v, want the GAP letter %d", offsetsOf(left), offs[0])
	}
}
