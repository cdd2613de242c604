package sink

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
)

// countingLog is a log whose readers count the bytes of the records they
// return (read) and the largest batch one Next returned (batch): what a
// sink read, independently of the read-ahead accounting under test.
type countingLog struct {
	intentlog.Log
	read, batch atomic.Int64
}

func (l *countingLog) NewReader(topic string, partition int32, offset int64) (intentlog.Reader, error) {
	r, err := l.Log.NewReader(topic, partition, offset)
	if err != nil {
		return nil, err
	}
	return &countingReader{Reader: r, l: l}, nil
}

type countingReader struct {
	intentlog.Reader
	l *countingLog
}

func (r *countingReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	recs, err := r.Reader.Next(ctx)
	var n int64
	for i := range recs {
		n += int64(len(recs[i].Key) + len(recs[i].Value))
	}
	r.l.read.Add(n)
	for {
		b := r.l.batch.Load()
		if n <= b || r.l.batch.CompareAndSwap(b, n) {
			break
		}
	}
	return recs, err
}

// takenBytes is the bytes of the events the endpoint took (their keys and
// values: somewhat below their records').
func takenBytes(ep *endpoint) int64 {
	var n int64
	for _, e := range ep.events() {
		n += int64(len(e.Key) + len(e.Value))
	}
	return n
}

// bigEvents are n events of distinct keys (spread over the partitions)
// with values of size bytes.
func bigEvents(n, size int) []*wailv1.ChangeEvent {
	evs := make([]*wailv1.ChangeEvent, n)
	for i := range evs {
		k := fmt.Sprintf("k%04d", i)
		evs[i] = &wailv1.ChangeEvent{Table: testTable, Key: []byte(k), Op: wailv1.Op_OP_UPSERT, Version: 1,
			Value: []byte(strings.Repeat("v", size)), EventId: testTable + "/" + k + "/1"}
	}
	return evs
}

// TestSinkReadAheadBounded: a sink whose endpoint is down (503) reads
// ahead of it at most its per-stream budget (api.subscription_buffer_bytes)
// plus one batch per partition (the batch each partition's worker holds
// past the budget is counted too; a batch over the budget takes all of
// it), not its queues' counts of log reads; with the process's pool full
// (other streams hold all of it) it still delivers everything once the
// endpoint answers: one batch at a time, no deadlock.
func TestSinkReadAheadBounded(t *testing.T) {
	const (
		partitions = 4
		budget     = 1 << 20
		events     = 480
		valueSize  = 64 << 10 // 30 MiB in all
	)
	for _, c := range []struct {
		name     string
		poolFull bool
	}{
		{"budget", false},
		{"pool full", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, partitions)
			log := &countingLog{Log: f.log}
			pool := readahead.NewPool(budget)
			if c.poolFull {
				other := pool.Stream(budget)
				n, err := other.Acquire(context.Background(), budget)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Release(n)
			}
			ep := newEndpoint(t, "")
			var down atomic.Bool
			down.Store(true)
			ep.fail = func(w http.ResponseWriter, _ *http.Request, _ *wailv1.SinkBatch) bool {
				if !down.Load() {
					return false
				}
				http.Error(w, "down", http.StatusServiceUnavailable)
				return true
			}
			m := New(Options{Backend: f.cat, Log: log, Run: true, Refresh: 50 * time.Millisecond,
				Table:     func(name string) (group.Table, bool) { return f.tbl, name == testTable },
				ReadAhead: budget, ReadAheadPool: pool})
			m.Start(context.Background())
			defer m.Close()
			if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "ra", Url: ep.url(), Start: "beginning",
				PartitionsInFlight: partitions, MaxRetryMs: 600_000, BackoffMinMs: 20, BackoffMaxMs: 50}); err != nil {
				t.Fatal(err)
			}
			evs := bigEvents(events, valueSize)
			for i := 0; i < len(evs); i += 32 {
				f.publish(evs[i:min(i+32, len(evs))]...)
			}
			waitFor(t, "attempts of the endpoint", time.Minute, func() bool { return ep.requests.Load() >= 2*partitions })
			// What the session read and the endpoint did not take: it
			// reads on until its budget stops it (or it read everything).
			var ahead int64
			for range 20 {
				time.Sleep(50 * time.Millisecond)
				ahead = log.read.Load() - takenBytes(ep)
				// A quarter more: the log's bytes of a record are not
				// exactly the bytes the budget counts of it (without the
				// bound the sink read all 30 MiB).
				if bound := (int64(budget) + partitions*log.batch.Load()) * 5 / 4; ahead > bound {
					t.Fatalf("the sink read %d bytes ahead of its endpoint (%d MiB), over its budget %d plus a batch of at most %d per partition (%d)",
						ahead, ahead>>20, budget, log.batch.Load(), bound)
				}
			}
			t.Logf("read ahead %d bytes (largest batch %d)", ahead, log.batch.Load())
			down.Store(false)
			waitFor(t, "every event delivered", 2*time.Minute, func() bool { return len(ep.events()) >= events })
			seen := checkOrder(t, ep.events())
			if len(seen) != events {
				t.Fatalf("%d keys received, want %d", len(seen), events)
			}
		})
	}
}
