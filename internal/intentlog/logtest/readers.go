package logtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// newReader opens a reader and closes it at the end of the test.
func newReader(t *testing.T, l intentlog.Log, topic string, p int32, off int64) intentlog.Reader {
	t.Helper()
	r, err := l.NewReader(topic, p, off)
	if err != nil {
		t.Fatalf("NewReader(%s, %d, %d): %v", topic, p, off, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// testReaderWakesOnAppend: readers waiting at the end are woken by an Append
// from another goroutine.
func (s *suite) testReaderWakesOnAppend(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	ctx := ctxT(t)
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	appendRecs(t, l, topic, []*intentlog.Record{keyed("a", "0"), keyed("b", "1"), keyed("c", "2")})
	caughtUp := newReader(t, l, topic, 0, 0)
	for n := 0; n < 3; {
		recs, err := caughtUp.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		n += len(recs)
	}
	atEnd := newReader(t, l, topic, 0, 3)
	waits := []<-chan result{nextAsync(ctx, caughtUp), nextAsync(ctx, atEnd)}
	for i, ch := range waits {
		mustBlock(t, ch, fmt.Sprintf("reader %d at the end", i))
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Append(ctx, topic, []*intentlog.Record{keyed("wake", "up")}) }()
	for i, ch := range waits {
		res := await(t, ch, fmt.Sprintf("reader %d after an Append", i))
		if res.err != nil {
			t.Fatalf("reader %d: Next: %v", i, res.err)
		}
		if len(res.recs) != 1 || res.recs[0].Offset != 3 || string(res.recs[0].Key) != "wake" {
			t.Errorf("reader %d: woke with %d records, first %+v; want offset 3 key \"wake\"", i, len(res.recs), res.recs)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// testReaderContext: a blocked Next returns the context's error.
func (s *suite) testReaderContext(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	r := newReader(t, l, topic, 0, 0)

	ctx, cancel := context.WithCancel(t.Context())
	ch := nextAsync(ctx, r)
	mustBlock(t, ch, "empty partition")
	cancel()
	if res := await(t, ch, "after cancel"); !errors.Is(res.err, context.Canceled) || len(res.recs) != 0 {
		t.Errorf("Next after cancel = %d records, %v; want context.Canceled", len(res.recs), res.err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if res := await(t, nextAsync(ctx, r), "with a deadline"); !errors.Is(res.err, context.DeadlineExceeded) {
		t.Errorf("Next with a deadline: %v; want context.DeadlineExceeded", res.err)
	}

	// The reader still works after its contexts ended.
	appendRecs(t, l, topic, []*intentlog.Record{keyed("k", "v")})
	res := await(t, nextAsync(ctxT(t), r), "after an Append")
	if res.err != nil || len(res.recs) != 1 || res.recs[0].Offset != 0 {
		t.Errorf("Next after an Append = %+v, %v; want offset 0", res.recs, res.err)
	}
}

// testReaderClose: Reader.Close wakes a blocked Next; Next after Close fails
// with ErrClosed.
func (s *suite) testReaderClose(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	r := newReader(t, l, topic, 0, 0)
	ch := nextAsync(ctxT(t), r)
	mustBlock(t, ch, "empty partition")
	if err := r.Close(); err != nil {
		t.Errorf("Reader.Close: %v", err)
	}
	if res := await(t, ch, "after Reader.Close"); res.err == nil {
		t.Errorf("blocked Next after Reader.Close returned %d records and no error", len(res.recs))
	}
	if _, err := r.Next(ctxT(t)); !errors.Is(err, intentlog.ErrClosed) {
		t.Errorf("Next after Reader.Close: %v, want ErrClosed", err)
	}
}

// testLogCloseUnblocksReader: Log.Close makes a blocked Next return; Append
// after Close fails with ErrClosed.
func (s *suite) testLogCloseUnblocksReader(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, 2)
	r := newReader(t, l, topic, 1, 0)
	ch := nextAsync(ctxT(t), r)
	mustBlock(t, ch, "empty partition")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if res := await(t, ch, "after Log.Close"); res.err == nil {
		t.Errorf("blocked Next after Log.Close returned %d records and no error", len(res.recs))
	}
	if err := l.Append(ctxT(t), topic, []*intentlog.Record{keyed("k", "v")}); !errors.Is(err, intentlog.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
}

// testReaderFromMiddle: a reader returns records from exactly its offset.
func (s *suite) testReaderFromMiddle(t *testing.T) {
	const n = 40
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	var want []intentlog.Record
	for c := range 4 {
		var recs []*intentlog.Record
		for i := range n / 4 {
			recs = append(recs, keyed(fmt.Sprintf("k%d", c*10+i), fmt.Sprintf("value %d", c*10+i)))
		}
		appendRecs(t, l, topic, recs)
		for _, r := range recs {
			want = append(want, *r)
		}
	}
	for _, from := range []int64{0, 1, 17, 29, n - 1} {
		got := readRange(t, l, topic, 0, from, n)
		for i := range got {
			if d := diffRecord(&want[from+int64(i)], &got[i]); d != "" {
				t.Errorf("reading from %d: offset %d: %s", from, got[i].Offset, d)
			}
		}
	}
}

// testOffsetOutOfRange: a reader outside [start, end] fails with
// ErrOffsetOutOfRange, from NewReader or from its first Next (either is
// accepted); a reader at end waits.
func (s *suite) testOffsetOutOfRange(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	appendRecs(t, l, topic, []*intentlog.Record{keyed("a", "0"), keyed("b", "1"), keyed("c", "2")})
	for _, off := range []int64{-1, 4, 1000} {
		if err := firstError(t, l, topic, 0, off); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
			t.Errorf("reader at offset %d with bounds [0, 3]: %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if err := firstError(t, l, s.topic(t, "-missing"), 0, 0); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("reader of unknown topic: %v, want ErrUnknownTopic", err)
	}
	if err := firstError(t, l, topic, 1, 0); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reader of partition 1 of 1: %v, want an error", err)
	}
	r := newReader(t, l, topic, 0, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next at the end offset: %v, want it to wait (context.DeadlineExceeded)", err)
	}
}

// firstError returns the error of NewReader, or else of the first Next.
func firstError(t *testing.T, l intentlog.Log, topic string, p int32, off int64) error {
	t.Helper()
	r, err := l.NewReader(topic, p, off)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout/2)
	defer cancel()
	recs, err := r.Next(ctx)
	if err == nil && len(recs) > 0 {
		return fmt.Errorf("reader.Next returned %d records (first offset %d) and no error", len(recs), recs[0].Offset)
	}
	if err == nil {
		return errors.New("reader.Next returned no records and no error")
	}
	return err
}
