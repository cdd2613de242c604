package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// hangMem is a memLog on which transactions can hang.
type hangMem struct {
	*memLog
	hanging *intentlog.Hanging
	asked   []int64 // the offsets Unhang was asked from
}

func (l *hangMem) Unhang(_ context.Context, _ string, _ int32, from, _ int64) (*intentlog.Hanging, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, from)
	return l.hanging, nil
}

func (l *hangMem) questions() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64{}, l.asked...)
}

// heldBus is a bus on a hangMem whose partition holds a:1, b:2 that
// readers get only once release is called.
func heldBus(t *testing.T) (b *Bus, log *hangMem, release func()) {
	t.Helper()
	log = &hangMem{memLog: newMemLog()}
	b = abBus(t, log)
	hold := make(chan struct{})
	log.hold = hold
	return b, log, func() { close(hold) }
}

// abBus is a bus on log with table t, whose partition holds a:1, b:2.
func abBus(t *testing.T, log intentlog.Log) *Bus {
	t.Helper()
	b := New(log)
	ctx := context.Background()
	if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "t", []intent.Event{
		{Table: "t", Key: []byte("a"), Op: intent.Upsert, Version: 1},
		{Table: "t", Key: []byte("b"), Op: intent.Upsert, Version: 2},
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// setStallCheck sets stallCheck for a test (which must not be parallel).
func setStallCheck(t *testing.T, d time.Duration) {
	old := stallCheck
	stallCheck = d
	t.Cleanup(func() { stallCheck = old })
}

// TestScanWaitsForOpenTransactions: a scan without a stall bound waits
// for records that are slow to come (a transaction still open) however
// many times stallCheck passes, and asks about hanging transactions only
// when healing (Recover) and only once stallCheck passed without records.
// Not parallel: it sets stallCheck.
func TestScanWaitsForOpenTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	initial := stallCheck
	setStallCheck(t, 20*time.Millisecond)
	b, log, release := heldBus(t)
	time.AfterFunc(150*time.Millisecond, release)
	got, err := b.LastVersions(ctx, "t", 0, time.Time{})
	if err != nil || got["a"] != 1 || got["b"] != 2 {
		t.Fatalf("LastVersions = %v, %v; want a:1 b:2 once the records came", got, err)
	}
	if q := log.questions(); len(q) != 0 {
		t.Fatalf("LastVersions asked about hanging transactions (%v)", q)
	}

	b, log, release = heldBus(t)
	time.AfterFunc(150*time.Millisecond, release)
	rec, err := b.Recover(ctx, "t", 0, time.Time{}, RecoverWaits{})
	if err != nil || rec.Last["a"] != 1 || rec.Last["b"] != 2 || rec.Unblock != nil {
		t.Fatalf("Recover = %+v, %v; want a:1 b:2, nothing hanging", rec, err)
	}
	if q := log.questions(); len(q) == 0 || q[0] != 0 {
		t.Fatal("Recover did not ask about hanging transactions past offset 0 while the partition did not advance")
	}

	// Records that come before stallCheck (at its default) passes: no
	// question.
	setStallCheck(t, initial)
	b, log, release = heldBus(t)
	time.AfterFunc(50*time.Millisecond, release)
	if rec, err := b.Recover(ctx, "t", 0, time.Time{}, RecoverWaits{}); err != nil || rec.Last["b"] != 2 {
		t.Fatalf("Recover = %+v, %v", rec, err)
	}
	if q := log.questions(); len(q) != 0 {
		t.Fatalf("Recover asked about hanging transactions before stallCheck passed (%v)", q)
	}
}

// TestRecoverHangingMidScan: when the partition stops advancing because
// of hanging transactions, Recover returns what the log read past them:
// the committed records in Last, the hanging ones as orphans, and Unblock.
// Not parallel: it sets stallCheck.
func TestRecoverHangingMidScan(t *testing.T) {
	setStallCheck(t, 20*time.Millisecond)
	b, log, _ := heldBus(t) // never released: the hang holds the readers
	aborted := false
	log.hanging = &intentlog.Hanging{
		Committed: []intentlog.Record{eventRec(t, "a", 1)},
		Records:   []intentlog.Record{eventRec(t, "b", 2)},
		Abort:     func(context.Context) error { aborted = true; return nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := b.Recover(ctx, "t", 0, time.Time{}, RecoverWaits{})
	if err != nil || len(rec.Last) != 1 || rec.Last["a"] != 1 || len(rec.Orphans) != 1 || rec.Orphans[0].Version != 2 || rec.Unblock == nil {
		t.Fatalf("Recover = %+v, %v; want a:1, orphan b@2, Unblock", rec, err)
	}
	if rec.Unblock(ctx) != nil || !aborted {
		t.Fatal("Unblock does not abort the hang")
	}
}

// TestStallLimit: LastVersionsOf gives up on a partition that does not
// advance after 30 s, as documented.
func TestStallLimit(t *testing.T) {
	t.Parallel()
	if stallLimit != 30*time.Second {
		t.Fatalf("stallLimit is %s, documented as 30 s", stallLimit)
	}
}

// blockingLog is a memLog whose OffsetForTime or Bounds (block: "time",
// "bounds") waits for its context to end.
type blockingLog struct {
	*memLog
	block string
}

func (l *blockingLog) OffsetForTime(ctx context.Context, topic string, p int32, t time.Time) (int64, error) {
	if l.block == "time" {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return l.memLog.OffsetForTime(ctx, topic, p, t)
}

func (l *blockingLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if l.block == "bounds" {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	return l.memLog.Bounds(ctx, topic, p)
}

// TestRecoverWaits: Recover has no total bound (the scan of a big
// partition takes as long as it takes; a total cut off scans that were
// getting on, which then began again from the same point, for ever). A
// scan that keeps reading completes however long it takes; one that reads
// nothing for Stall fails with ErrStalled; a question before the scan that
// gets no answer fails after Call.
func TestRecoverWaits(t *testing.T) {
	t.Parallel()
	const stall, call = 100 * time.Millisecond, 50 * time.Millisecond
	for _, tc := range []struct {
		name  string
		setup func(*memLog) // before Recover
		block string
		want  error // nil: every event recovered
		says  string
	}{
		{name: "slow scan that goes on", setup: func(l *memLog) {
			l.onNext = func(int32, int64) { time.Sleep(stall / 2) } // 6 reads of 2 records: 3 stalls' time
		}},
		{name: "scan that stops", setup: func(l *memLog) {
			l.onNext = func(_ int32, pos int64) {
				if pos == 4 { // this read still returns 4 and 5; the next waits
					l.mu.Lock()
					l.hold = make(chan struct{}) // never closed
					l.mu.Unlock()
				}
			}
		}, want: ErrStalled, says: "past offset 6 for 100ms"},
		{name: "offset for time without answer", block: "time", want: context.DeadlineExceeded, says: "no answer within 50ms"},
		{name: "bounds without answer", block: "bounds", want: context.DeadlineExceeded, says: "no answer within 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			mem := newMemLog()
			b := New(&blockingLog{memLog: mem, block: tc.block})
			if err := b.CreateTable(ctx, "t", 1, 0); err != nil {
				t.Fatal(err)
			}
			for v := range uint64(12) {
				if err := b.Publish(ctx, "t", []intent.Event{{Table: "t", Key: []byte{'a' + byte(v)}, Op: intent.Upsert, Version: v + 1}}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(mem)
			}
			began := time.Now()
			rec, err := b.Recover(ctx, "t", 0, time.Time{}, RecoverWaits{Call: call, Stall: stall})
			took := time.Since(began)
			if tc.want == nil {
				if err != nil || len(rec.Last) != 12 || rec.Last["l"] != 12 {
					t.Fatalf("Recover = %v, %v after %s; want the 12 events", rec.Last, err, took)
				}
				if took < stall {
					t.Fatalf("the scan took %s, not longer than the stall bound %s: it tests nothing", took, stall)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Recover = %v after %s; want %v saying %q", err, took, tc.want, tc.says)
			}
		})
	}
}
