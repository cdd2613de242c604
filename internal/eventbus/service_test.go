package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestUntilEndReadsNothingPastItsEnd: an until_end stream opens no reader
// for a partition already at its end (an empty one, or one started at
// "latest": a log whose readers fail does not fail it), and a partition
// read to its end is not read further (no read waits at the tail for
// records past the end).
func TestUntilEndReadsNothingPastItsEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		partitions int32
		versions   []uint64 // published before the stream
		from       string
		noReaders  bool // the log's readers fail
		want       int  // events delivered
	}{
		{name: "empty partitions", partitions: 2, from: "beginning", noReaders: true},
		{name: "started at the end", partitions: 1, versions: []uint64{1, 2, 3}, from: "latest", noReaders: true},
		{name: "read to the end", partitions: 1, versions: []uint64{1, 2, 3}, from: "beginning", want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newStreams(t, tc.partitions, Limits{})
			if len(tc.versions) > 0 {
				upserts(t, st.bus, tc.versions...)
			}
			end := int64(len(tc.versions))
			var mu sync.Mutex
			var pastEnd []int64
			st.log.mu.Lock()
			if tc.noReaders {
				st.log.readerErr = errors.New("no reader")
			}
			st.log.onNext = func(_ int32, pos int64) {
				if pos >= end {
					mu.Lock()
					pastEnd = append(pastEnd, pos)
					mu.Unlock()
				}
			}
			st.log.mu.Unlock()
			events, cursors := 0, 0
			err := st.svc.Subscribe(st.ctx, &wailv1.SubscribeRequest{Table: "t", From: tc.from, UntilEnd: true}, false,
				func(string) error { return nil },
				func(m *wailv1.SubscribeResponse) error {
					if m.Event != nil {
						events++
					} else if m.Cursor != "" {
						cursors++
					}
					return nil
				})
			if err != nil {
				t.Fatalf("the stream failed: %v", err)
			}
			if events != tc.want || cursors != 1 {
				t.Errorf("%d events and %d cursors, want %d events and the end's cursor", events, cursors, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(pastEnd) > 0 {
				t.Errorf("reads began at %v, at or past the end (%d)", pastEnd, end)
			}
		})
	}
}

// TestSubscribeBatchUpToMax: a batching stream's read of its queue takes
// batches until it holds max_batch_events events, and no more, and gives
// the budget back the bytes of every batch it took. v1 is sent alone while
// the reader queues the later versions in reads of 2 records; then:
//   - "up to max": with 6 reads queued and 4 events asked, the messages
//     hold 4 events each (a read that took a third batch would send 4
//     and 2);
//   - "frees its budget": with a budget of 5 records, v2-v3 and v4-v5
//     fill it; the reader takes v6-v7 only once both reads of the message
//     v2-v5 are freed.
func TestSubscribeBatchUpToMax(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		budgetRecs int64 // the stream's budget in records (0: none)
		last       uint64
		queuedAt   int64 // the reader's position once the queue holds what the test needs
		want       string
	}{
		{"up to max", 0, 13, 13, "[[1] [2 3 4 5] [6 7 8 9] [10 11 12 13]]"},
		{"frees its budget", 5, 7, 5, "[[1] [2 3 4 5] [6 7]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newStreams(t, 1, Limits{})
			ctx, cancel := context.WithCancel(st.ctx)
			defer cancel()
			upserts(t, st.bus, 1)
			queued, first, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var once sync.Once
			st.log.mu.Lock()
			rec := st.log.parts[Topic("t")][0].recs[0]
			st.log.onNext = func(_ int32, pos int64) {
				if pos == tc.queuedAt {
					once.Do(func() { close(queued) })
				}
			}
			st.log.mu.Unlock()
			e, ok, err := Decode(&rec)
			if !ok || err != nil {
				t.Fatalf("the first record is no event: %v", err)
			}
			// budgetRecs events as counted (their version's digits aside)
			st.svc.WithLimits(Limits{BufferBytes: tc.budgetRecs * (newLiveEvent(0, e.Proto()).memory() + 1)})
			var msgs []string
			got := uint64(0)
			done := make(chan error, 1)
			go func() {
				done <- st.svc.Subscribe(ctx, &wailv1.SubscribeRequest{Table: "t", From: "beginning", MaxBatchEvents: 4}, false,
					func(string) error { return nil },
					func(m *wailv1.SubscribeResponse) error {
						var vs []uint64
						for _, e := range m.Events {
							vs = append(vs, e.Event.Version)
						}
						msgs = append(msgs, fmt.Sprint(vs))
						got += uint64(len(vs))
						if len(msgs) == 1 {
							close(first)
							<-release // the queue fills meanwhile
						}
						if got == tc.last {
							cancel()
						}
						return nil
					})
			}()
			select {
			case <-first:
			case <-ctx.Done():
				t.Fatal("no first message")
			}
			var vs []uint64
			for v := uint64(2); v <= tc.last; v++ {
				vs = append(vs, v)
			}
			upserts(t, st.bus, vs...) // one append: the reader's reads take 2 records each
			select {
			case <-queued:
			case <-ctx.Done():
				t.Fatalf("the reader did not reach offset %d", tc.queuedAt)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("the stream ended with %v", err)
			}
			if fmt.Sprint(msgs) != tc.want {
				t.Errorf("messages %v, want %s", msgs, tc.want)
			}
		})
	}
}

// TestSubscribeFromTime: a stream from a time starts each partition at
// the log's offset for that time: "-<duration>" that long before the
// stream began, an RFC 3339 time as it is.
func TestSubscribeFromTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		from string
		ago  time.Duration // 0: at
	}{
		{"-15m", 15 * time.Minute},
		{"-1s", time.Second},
		{at.Format(time.RFC3339), 0},
	} {
		st := newStreams(t, 1, Limits{})
		upserts(t, st.bus, 1, 2)
		st.log.mu.Lock()
		st.log.timeOffset = 1
		st.log.mu.Unlock()
		var first *wailv1.SubscribeResponse
		over := errors.New("over")
		before := time.Now()
		err := st.svc.Subscribe(st.ctx, &wailv1.SubscribeRequest{Table: "t", From: tc.from}, false, func(string) error { return nil },
			func(m *wailv1.SubscribeResponse) error { first = m; return over })
		after := time.Now()
		if !errors.Is(err, over) || first.Offset != 1 || first.Event.Version != 2 {
			t.Fatalf("from %s: first %v, %v; want v2 at the time's offset 1", tc.from, first, err)
		}
		st.log.mu.Lock()
		asked := st.log.askedTime
		st.log.mu.Unlock()
		if tc.ago == 0 && !asked.Equal(at) || tc.ago > 0 && (asked.Before(before.Add(-tc.ago)) || asked.After(after.Add(-tc.ago))) {
			t.Errorf("from %s: asked the offset of %v, want %v before the stream began (%v)", tc.from, asked, tc.ago, before)
		}
	}
}
