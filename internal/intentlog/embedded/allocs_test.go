package embedded

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendRecyclesBodies: an Append allocates far less than the bytes
// it encodes, since the buffer its records are encoded into serves the
// next Append once every part was copied into its partition's batch.
func TestAppendRecyclesBodies(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: one pool, as testing.AllocsPerRun does
	l := openLog(t, t.TempDir(), Options{NoSync: true})
	if err := l.CreateTopic(t.Context(), "t", 8, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	const n, valueLen, runs = 100, 1000, 100
	value := make([]byte, valueLen)
	recs := make([]*intentlog.Record, n)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: value}
	}
	appendAll := func() {
		if err := l.Append(t.Context(), "t", recs); err != nil {
			t.Fatal(err)
		}
	}
	appendAll()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		appendAll()
	}
	runtime.ReadMemStats(&after)
	if got := (after.TotalAlloc - before.TotalAlloc) / runs; got > n*valueLen/2 {
		t.Errorf("an Append of %d records of %d bytes allocated %d bytes, want at most half the values (the race detector drops some pooled buffers)", n, valueLen, got)
	}
}

// TestReadAllocates: a read allocates the records it returns once, sized
// from its first batch, not per batch or as it grows.
func TestReadAllocates(t *testing.T) {
	const batches, per = 64, 125
	l := openLog(t, t.TempDir(), Options{NoSync: true})
	fillPartition(t, l, "t", batches, per)
	calls := 0
	allocs := testing.AllocsPerRun(5, func() {
		r, err := l.NewReader("t", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		calls = 0
		for n := 0; n < batches*per; calls++ {
			recs, err := r.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > maxReadRecords || recs[len(recs)-1].Offset != int64(n+len(recs)-1) {
				t.Fatalf("read %d records from offset %d, the last at %d", len(recs), n, recs[len(recs)-1].Offset)
			}
			n += len(recs)
		}
	})
	// Per Next: the records, and now and then a chunk of the file.
	if per := allocs / float64(calls); per > 4 {
		t.Errorf("%.1f allocations per Next (%d calls), want at most 4", per, calls)
	}
}

func TestReadCap(t *testing.T) {
	for _, tc := range []struct {
		count, size int
		left        int64
		want        int
	}{
		{count: 10, size: 100, left: 100, want: 10},                              // one batch: exactly its records
		{count: 10, size: 100, left: 150, want: 20},                              // and part of another
		{count: 10, size: 100, left: 300, want: 30},                              // three batches
		{count: 125, size: 16 << 10, left: 10 << 20, want: maxReadRecords + 125}, // more records than a read takes
		{count: 10, size: 100 << 10, left: 10 << 20, want: 110},                  // the bytes a read takes
		{count: 1, size: 100, left: 4 << 20, want: maxReadRecords + 1},           // records bound the read
		{count: 2000, size: 200 << 10, left: 200 << 10, want: 2000},              // one batch over the records bound
	} {
		if got := readCap(tc.count, tc.size, tc.left); got != tc.want {
			t.Errorf("readCap(%d, %d, %d) = %d, want %d", tc.count, tc.size, tc.left, got, tc.want)
		}
	}
}

// TestDecodeHeadersBounded: a batch that claims many records and whose
// first record has many headers does not make the decoder reserve room
// for that many headers in every record: the room is bounded by what the
// batch's bytes can hold.
func TestDecodeHeadersBounded(t *testing.T) {
	const count, headers = 5000, 10000
	body := varints(0, -1, -1, headers)
	for range headers {
		body = append(body, varints(0, -1)...) // empty key, nil value
	}
	b := rawBatch(0, count, body...) // the other records are missing
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := decodeBatch(nil, b)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("decoding a batch without its records: %v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("decoding a %d-byte batch allocated %d MiB", len(b), got>>20)
	}
}

// TestReadTailRoom: a read near the end of a segment sizes its result for
// the bytes left from where it starts: one batch gets room for its
// records, not for a segment's worth.
func TestReadTailRoom(t *testing.T) {
	const batches, per = 64, 125
	l := openLog(t, t.TempDir(), Options{NoSync: true})
	fillPartition(t, l, "t", batches, per)
	for _, tc := range []struct{ from, n int }{
		{from: (batches - 1) * per, n: per},       // the last batch
		{from: (batches-1)*per + 25, n: per - 25}, // part of it
		{from: (batches - 2) * per, n: 2 * per},   // the last two
	} {
		r, err := l.NewReader("t", 0, int64(tc.from))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := r.Next(t.Context())
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != tc.n || recs[0].Offset != int64(tc.from) || cap(recs) > tc.n+per {
			t.Errorf("read from %d: %d records from %d, room for %d; want %d from %d, room for at most %d",
				tc.from, len(recs), recs[0].Offset, cap(recs), tc.n, tc.from, tc.n+per)
		}
	}
}

// fillPartition creates topic with one partition and appends batches
// Appends of per records (100-byte values) to it.
func fillPartition(tb testing.TB, l *Log, topic string, batches, per int) {
	tb.Helper()
	if err := l.CreateTopic(tb.Context(), topic, 1, intentlog.TopicOptions{}); err != nil {
		tb.Fatal(err)
	}
	value := make([]byte, 100)
	for i := range batches {
		recs := make([]*intentlog.Record, per)
		for j := range recs {
			recs[j] = &intentlog.Record{Key: fmt.Appendf(nil, "key-%d-%d", i, j), Value: value}
		}
		if err := l.Append(tb.Context(), topic, recs); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestDecoderHeaders: the headers slab holds the records left times the
// headers of the record that opens it, at most what the bytes left can
// hold (two bytes a header) and at least that record's; a record whose
// headers fit exactly in the room left takes them from the same slab.
func TestDecoderHeaders(t *testing.T) {
	for _, tc := range []struct {
		name           string
		bytes, left, n int
		want           int
	}{
		{"records left times headers", 1000, 10, 3, 30},
		{"bounded by the bytes left", 100, 1000, 3, 50},
		{"at least the record's own", 4, 1000, 3, 3},
		{"the last record", 1000, 1, 2, 2},
	} {
		d := decoder{b: make([]byte, tc.bytes), left: tc.left}
		if got := d.headers(tc.n); len(got) != tc.n || cap(got) != tc.n || cap(d.hdrs) != tc.want {
			t.Errorf("%s: %d headers (room %d) from a slab of %d, want %d from a slab of %d", tc.name, len(got), cap(got), cap(d.hdrs), tc.n, tc.want)
		}
	}
	d := decoder{b: make([]byte, 1000), left: 2}
	first := d.headers(2) // a slab of 4
	second := d.headers(2)
	if &d.hdrs[0] != &first[0] || &d.hdrs[2] != &second[0] {
		t.Error("the second record's headers, which fit the room left exactly, came from a new slab")
	}
}
