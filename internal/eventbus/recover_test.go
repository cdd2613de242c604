package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// hangLog is an embedded log that reports one hanging transaction.
type hangLog struct {
	*embedded.Log
	hanging *intentlog.Hanging
	asked   int
}

func (l *hangLog) Unhang(context.Context, string, int32, int64, int64) (*intentlog.Hanging, error) {
	l.asked++
	return l.hanging, nil
}

func eventRec(t *testing.T, key string, version uint64) intentlog.Record {
	t.Helper()
	e := intent.Event{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: version, Value: []byte("v")}
	r, err := Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	return *r
}

func TestRecoverHanging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emb, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	aborted := false
	log := &hangLog{Log: emb, hanging: &intentlog.Hanging{
		// k committed past the hang at 3; the hang has k@2 and k@3
		// (covered), j@1 twice (one copy is enough) and a tombstone.
		Committed: []intentlog.Record{eventRec(t, "k", 3)},
		Records:   []intentlog.Record{eventRec(t, "k", 2), eventRec(t, "k", 3), eventRec(t, "j", 1), eventRec(t, "j", 1), {Key: []byte("j")}},
		Abort:     func(context.Context) error { aborted = true; return nil },
	}}
	b := New(log)
	if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	rec, err := b.LastVersions(ctx, "t", 0, time.Now())
	if err != nil || len(rec) != 0 || log.asked != 0 {
		t.Fatalf("LastVersions = %v, %v after %d questions; want nothing, no question about hangs", rec, err, log.asked)
	}
	got, err := b.Recover(ctx, "t", 0, time.Now(), RecoverWaits{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Last["k"] != 3 || len(got.Last) != 1 {
		t.Errorf("Last = %v, want k:3", got.Last)
	}
	if len(got.Orphans) != 1 || string(got.Orphans[0].Key) != "j" || got.Orphans[0].Version != 1 {
		t.Errorf("Orphans = %+v, want j@1", got.Orphans)
	}
	if got.Unblock == nil || got.Unblock(ctx) != nil || !aborted {
		t.Error("Unblock does not abort the hang")
	}
	log.hanging = nil
	if got, err := b.Recover(ctx, "t", 0, time.Now(), RecoverWaits{}); err != nil || got.Unblock != nil || len(got.Orphans) != 0 {
		t.Errorf("Recover without a hang = %+v, %v", got, err)
	}
}

func TestLastVersionsOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	b := New(log)
	if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := b.LastVersionsOf(ctx, "t", 0, 0, nil); err != nil || len(got.Last) != 0 || !got.FirstAt.IsZero() || got.End != 0 {
		t.Fatalf("empty partition: %+v, %v", got, err)
	}
	before := time.Now()
	events := []intent.Event{
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 5, Value: []byte("x")},
		{Table: "t", Key: []byte("b"), Op: intent.Upsert, Version: 3, Value: []byte("x")},
		{Table: "t", Key: []byte("a"), Op: intent.Delete, Version: 9},
		{Table: "t", Key: []byte("c"), Op: intent.Upsert, Version: 1, Value: []byte("x")},
	}
	if err := b.Publish(ctx, "t", events); err != nil {
		t.Fatal(err)
	}
	all, err := b.LastVersionsOf(ctx, "t", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Last) != 3 || all.Last["a"] != 9 || all.Last["b"] != 3 || all.Last["c"] != 1 {
		t.Errorf("every key: %v, want a:9 b:3 c:1", all.Last)
	}
	if all.Start != 0 || all.End != 5 || all.FirstAt.Before(before.Add(-time.Second)) {
		t.Errorf("bounds %d..%d, first at %v", all.Start, all.End, all.FirstAt)
	}
	some, err := b.LastVersionsOf(ctx, "t", 0, 0, func(k []byte) bool { return string(k) == "a" || string(k) == "z" })
	if err != nil || len(some.Last) != 1 || some.Last["a"] != 9 {
		t.Errorf("keys a and z: %v, %v; want a:9 only", some.Last, err)
	}
	tail, err := b.LastVersionsOf(ctx, "t", 0, 3, nil) // the tombstone of a's delete, then c
	if err != nil || len(tail.Last) != 1 || tail.Last["c"] != 1 || tail.End != 5 {
		t.Errorf("from offset 3: %+v, %v; want c:1", tail, err)
	}
}

// stuckLog reads nothing: its readers wait as if a transaction held the
// partition.
type stuckLog struct{ *embedded.Log }

func (l stuckLog) NewReader(string, int32, int64) (intentlog.Reader, error) {
	return stuckReader{}, nil
}

type stuckReader struct{}

func (stuckReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (stuckReader) Position() int64 { return 0 }
func (stuckReader) Close() error    { return nil }

// TestLastVersionsOfStalled: a partition that does not advance fails the
// scan after stallLimit instead of holding it forever. Not parallel: it
// sets stallLimit. Its context ends after a minute, so that a scan that
// never gives up fails the test instead of hanging the binary.
func TestLastVersionsOfStalled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	b := New(stuckLog{emb})
	if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "t", []intent.Event{{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	defer func(old time.Duration) { stallLimit = old }(stallLimit)
	stallLimit = 50 * time.Millisecond
	start := time.Now()
	_, err = b.LastVersionsOf(ctx, "t", 0, 0, nil)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "past offset 0") {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about %s", d, stallLimit)
	}
}
