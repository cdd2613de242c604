package embedded

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// batchesOf returns the headers of the batches of a segment file.
func batchesOf(t testing.TB, fsys vfs.FS, path string) []batchHeader {
	t.Helper()
	data := readFile(t, fsys, path)
	fr := frameReader{r: bytes.NewReader(data), limit: int64(len(data)), chunk: readChunk}
	var out []batchHeader
	for {
		frame, _, err := fr.next()
		if err == io.EOF {
			return out
		}
		noErr(t, err)
		h, err := parseHeader(frame)
		noErr(t, err)
		out = append(out, h)
	}
}

// heldWriter opens a one-partition log on a MemFS whose first segment
// write, once armed, blocks at the gate; it counts segment fsyncs.
func heldWriter(t *testing.T, opts Options) (*Log, *partition, *gate, *atomic.Int64, vfs.FS) {
	t.Helper()
	g := newGate()
	syncs := &atomic.Int64{}
	fsys := &hookFS{FS: vfs.NewMem(), hook: func(op vfs.Op, name string, _ int64, _ int) error {
		g.hold(op, name)
		if op == vfs.OpSync && strings.HasSuffix(name, logExt) {
			syncs.Add(1)
		}
		return nil
	}}
	opts.FS = fsys
	l := openLog(t, "/log", opts)
	t.Cleanup(func() { _ = l.Close() })
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	return l, l.topics[testTopic].parts[0], g, syncs, fsys
}

// appendHeld appends recs[0] alone while the writer is held at the gate
// inside its write, then the others one per Append (they queue), releases
// the writer and waits for every Append.
func appendHeld(t *testing.T, l *Log, p *partition, g *gate, recs []*intentlog.Record) {
	t.Helper()
	errs := make(chan error, len(recs))
	one := func(r *intentlog.Record) { errs <- l.Append(context.Background(), testTopic, []*intentlog.Record{r}) }
	g.arm(isLog(vfs.OpWrite))
	go one(recs[0])
	g.await(t)
	for _, r := range recs[1:] {
		go one(r)
	}
	waitFor(t, "the appends to queue behind the held writer", func() bool { return queued(p) == len(recs)-1 })
	close(g.release)
	for range recs {
		noErr(t, <-errs)
	}
}

// TestGroupCommit: appenders that queue while the writer is busy share its
// next batch and its one fsync. The writer is held inside the write of a
// first batch (through the filesystem seam) until 31 more single-record
// appends are queued; once released it commits those 31 as one batch with
// one fsync, and every appender gets its own offset in it.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	const waiting = 31
	l, p, g, syncs, fsys := heldWriter(t, Options{})
	before := syncs.Load()
	recs := make([]*intentlog.Record, 1+waiting)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: make([]byte, 100)}
	}
	appendHeld(t, l, p, g, recs)

	batches := batchesOf(t, fsys, segmentPath("/log/t/0", 0, logExt))
	if len(batches) != 2 || batches[0].count != 1 || batches[1].count != waiting {
		t.Fatalf("batches %+v; want one of 1 record, then one of the %d queued appends", batches, waiting)
	}
	if n := syncs.Load() - before; n != 2 {
		t.Fatalf("%d fsyncs of the segment for 2 batches, want 2", n)
	}
	offsets := map[int64]bool{}
	for i, r := range recs {
		offsets[r.Offset] = true
		if i > 0 && (r.Offset < 1 || !r.Timestamp.Equal(recs[1].Timestamp)) {
			t.Fatalf("append %d: offset %d, time %v; want an offset in the shared batch [1, %d] and its time %v",
				i, r.Offset, r.Timestamp, waiting, recs[1].Timestamp)
		}
	}
	if recs[0].Offset != 0 || len(offsets) != len(recs) {
		t.Fatalf("first append at %d, %d distinct offsets for %d appends", recs[0].Offset, len(offsets), len(recs))
	}
	sameRecords(t, "read back", readAll(t, l, 0), derefSorted(recs))
}

// derefSorted returns the records by offset.
func derefSorted(recs []*intentlog.Record) []intentlog.Record {
	out := make([]intentlog.Record, len(recs))
	for _, r := range recs {
		out[r.Offset-recs[0].Offset] = *r
	}
	return out
}

// TestBatchBytesBound: the writer never commits more than MaxBatchBytes in
// one batch: queued appends that do not all fit are split over several
// batches, each as full as the bound allows (here exactly two records).
func TestBatchBytesBound(t *testing.T) {
	t.Parallel()
	rec := func(i int) *intentlog.Record {
		return &intentlog.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: make([]byte, 100)}
	}
	size := int64(len(appendRecord(nil, 0, rec(0))))
	maxBatch := batchHeaderLen + 2*size
	l, p, g, _, fsys := heldWriter(t, Options{MaxBatchBytes: maxBatch})
	recs := make([]*intentlog.Record, 6)
	for i := range recs {
		recs[i] = rec(i)
	}
	appendHeld(t, l, p, g, recs)

	var counts []int
	for _, h := range batchesOf(t, fsys, segmentPath("/log/t/0", 0, logExt)) {
		counts = append(counts, h.count)
		if h.size > maxBatch || h.count == 2 && h.size != maxBatch {
			t.Fatalf("batch of %d records in %d bytes; MaxBatchBytes is %d", h.count, h.size, maxBatch)
		}
	}
	if fmt.Sprint(counts) != "[1 2 2 1]" {
		t.Fatalf("batches of %v records, want [1 2 2 1]: the held one, then the 5 queued ones two by two", counts)
	}
	sameRecords(t, "read back", readAll(t, l, 0), derefSorted(recs))
}

// TestWriterBuffer: the writer reuses its batch buffer from one batch to
// the next, but does not keep one that a large batch grew past 4 MiB.
func TestWriterBuffer(t *testing.T) {
	t.Parallel()
	l := openLog(t, "/log", Options{FS: vfs.NewMem(), NoSync: true, MaxRecordBytes: 8 << 20})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	p := l.topics[testTopic].parts[0]
	appendBatch(t, l, "small", 3)
	if cap(p.buf) == 0 {
		t.Fatal("the batch buffer was not kept for the next batch")
	}
	noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("big"), Value: make([]byte, 5<<20)}}))
	if p.buf != nil {
		t.Fatalf("a %d-byte batch buffer was kept", cap(p.buf))
	}
	appendBatch(t, l, "small-again", 3)
	if cap(p.buf) == 0 || cap(p.buf) > 4<<20 {
		t.Fatalf("buffer of %d bytes after a small batch", cap(p.buf))
	}
}
