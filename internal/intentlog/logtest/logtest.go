// Package logtest is the acceptance suite every intentlog.Log
// implementation must pass unchanged.
//
//	func TestLog(t *testing.T) {
//		logtest.Run(t, func(t *testing.T, dir string) intentlog.Log {
//			l, err := embedded.Open(dir, embedded.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return l
//		})
//	}
//
// Every subtest opens its own Log on its own t.TempDir() and uses its own
// topic names, derived from t.Name() plus a per-Run random suffix (so that
// reruns against a persistent cluster do not collide), and runs in parallel
// with the others.
package logtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// timeout bounds every wait of the suite; it is generous on purpose.
const timeout = 10 * time.Second

// Run runs the suite. open returns a Log that stores its data in dir (an
// implementation without local storage ignores dir). To test reopening, open
// is called again with the same dir, but only after the previous Log of that
// dir was closed. The suite closes every Log it opens; closing twice never
// happens.
func Run(t *testing.T, open func(t *testing.T, dir string) intentlog.Log) {
	s := &suite{open: open, runID: fmt.Sprintf("%08x", rand.Uint32())}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"TopicAdmin", s.testTopicAdmin},
		{"DeleteTopic", s.testDeleteTopic},
		{"Ordering", s.testOrdering},
		{"RouteKey", s.testRouteKey},
		{"Durability", s.testDurability},
		{"BoundsAndOffsetForTime", s.testBoundsAndOffsetForTime},
		{"CommittedOffsets", s.testCommittedOffsets},
		{"ReaderWakesOnAppend", s.testReaderWakesOnAppend},
		{"ReaderContext", s.testReaderContext},
		{"ReaderClose", s.testReaderClose},
		{"LogCloseUnblocksReader", s.testLogCloseUnblocksReader},
		{"ReaderFromMiddle", s.testReaderFromMiddle},
		{"OffsetOutOfRange", s.testOffsetOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct {
	open  func(t *testing.T, dir string) intentlog.Log
	runID string
}

// handle lets a test Close its Log early while the cleanup closes it too.
type handle struct {
	intentlog.Log
	once sync.Once
	err  error
}

func (h *handle) Close() error {
	h.once.Do(func() { h.err = h.Log.Close() })
	return h.err
}

func (s *suite) openLog(t *testing.T, dir string) *handle {
	t.Helper()
	h := &handle{Log: s.open(t, dir)}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// topic returns a topic name for this test: t.Name()+suffix sanitized to
// [a-z0-9_.-], plus the run's random suffix.
func (s *suite) topic(t *testing.T, suffix string) string {
	name := []byte(strings.ToLower(t.Name() + suffix))
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			name[i] = '_'
		}
	}
	if len(name) > 180 {
		name = name[len(name)-180:]
	}
	return string(name) + "-" + s.runID
}

// ctxT returns a context that ends with the test or after timeout.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, l intentlog.Log, topic string, n int32) {
	t.Helper()
	if err := l.CreateTopic(ctxT(t), topic, n, intentlog.TopicOptions{}); err != nil {
		t.Fatalf("CreateTopic(%s, %d): %v", topic, n, err)
	}
}

func appendRecs(t *testing.T, l intentlog.Log, topic string, recs []*intentlog.Record) {
	t.Helper()
	if err := l.Append(ctxT(t), topic, recs); err != nil {
		t.Fatalf("Append(%s, %d records): %v", topic, len(recs), err)
	}
}

func keyed(key, value string) *intentlog.Record {
	return &intentlog.Record{Key: []byte(key), Value: []byte(value)}
}

// readRange reads offsets [from, to) of a partition, checking that offsets
// are contiguous and that records carry their partition.
func readRange(t *testing.T, l intentlog.Log, topic string, p int32, from, to int64) []intentlog.Record {
	t.Helper()
	ctx := ctxT(t)
	r, err := l.NewReader(topic, p, from)
	if err != nil {
		t.Fatalf("NewReader(%s, %d, %d): %v", topic, p, from, err)
	}
	defer r.Close()
	var out []intentlog.Record
	for next := from; next < to; {
		recs, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("partition %d: Next at offset %d (reading [%d, %d)): %v", p, next, from, to, err)
		}
		if len(recs) == 0 {
			t.Fatalf("partition %d: Next at offset %d returned no records and no error", p, next)
		}
		if pos, last := r.Position(), recs[len(recs)-1].Offset; pos != last+1 {
			t.Fatalf("partition %d: Position %d after Next returned up to offset %d, want %d", p, pos, last, last+1)
		}
		for _, rec := range recs {
			if next == to {
				break
			}
			if rec.Offset != next {
				t.Fatalf("partition %d: read offset %d (key %q), want %d", p, rec.Offset, rec.Key, next)
			}
			if rec.Partition != p {
				t.Fatalf("partition %d offset %d: record says partition %d", p, next, rec.Partition)
			}
			out = append(out, rec)
			next++
		}
	}
	return out
}

// diffRecord describes how got differs from want in key, value (nil and
// empty are different), headers (values compared as bytes), partition,
// offset and timestamp; "" when they match.
func diffRecord(want, got *intentlog.Record) string {
	var d []string
	if !bytes.Equal(want.Key, got.Key) || (want.Key == nil) != (got.Key == nil) {
		d = append(d, fmt.Sprintf("key %s, want %s", show(got.Key), show(want.Key)))
	}
	if !bytes.Equal(want.Value, got.Value) || (want.Value == nil) != (got.Value == nil) {
		d = append(d, fmt.Sprintf("value %s, want %s", show(got.Value), show(want.Value)))
	}
	if len(want.Headers) != len(got.Headers) {
		d = append(d, fmt.Sprintf("%d headers, want %d", len(got.Headers), len(want.Headers)))
	} else {
		for i, h := range want.Headers {
			g := got.Headers[i]
			if g.Key != h.Key || !bytes.Equal(g.Value, h.Value) {
				d = append(d, fmt.Sprintf("header %d = %q:%s, want %q:%s", i, g.Key, show(g.Value), h.Key, show(h.Value)))
			}
		}
	}
	if want.Partition != got.Partition || want.Offset != got.Offset {
		d = append(d, fmt.Sprintf("at %d/%d, want %d/%d", got.Partition, got.Offset, want.Partition, want.Offset))
	}
	if !want.Timestamp.Equal(got.Timestamp) {
		d = append(d, fmt.Sprintf("timestamp %v, want %v", got.Timestamp, want.Timestamp))
	}
	return strings.Join(d, "; ")
}

func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// result is what a Next call in another goroutine returned.
type result struct {
	recs []intentlog.Record
	err  error
}

func nextAsync(ctx context.Context, r intentlog.Reader) <-chan result {
	ch := make(chan result, 1)
	go func() {
		recs, err := r.Next(ctx)
		ch <- result{recs, err}
	}()
	return ch
}

// await waits up to timeout for a result.
func await(t *testing.T, ch <-chan result, what string) result {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(timeout):
		t.Fatalf("%s: Next still blocked after %v", what, timeout)
		return result{}
	}
}

// mustBlock checks that Next has not returned after a short while.
func mustBlock(t *testing.T, ch <-chan result, what string) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("%s: Next returned %d records, err %v; want it to block", what, len(res.recs), res.err)
	case <-time.After(50 * time.Millisecond):
	}
}
