package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

func openLog(t testing.TB) *embedded.Log {
	t.Helper()
	l, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// letter is a PUBLISH dead letter of key in table t.
func letter(key string, partition int32) *wailv1.DeadLetter {
	return &wailv1.DeadLetter{
		Table: "t", Partition: partition, Key: []byte(key), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH,
		Intents:       []*wailv1.Intent{{Table: "t", Key: []byte(key), Op: wailv1.Op_OP_UPSERT, Version: 1, IntentId: "x"}},
		IntentOffsets: []int64{0}, Error: "boom", Attempts: 3, ResolverId: "r1",
	}
}

func gap(partition int32) *wailv1.DeadLetter {
	return &wailv1.DeadLetter{Table: "t", Partition: partition, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP,
		GapStartOffset: 3, GapEndOffset: 9, Error: "retention"}
}

// appendLetters writes letters (and creates the topic); it returns their offsets.
func appendLetters(t testing.TB, log intentlog.Log, letters ...*wailv1.DeadLetter) []int64 {
	t.Helper()
	ctx := context.Background()
	if err := log.CreateTopic(ctx, Topic("t"), Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*intentlog.Record, len(letters))
	for i, l := range letters {
		r, err := LetterRecord(l)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
	}
	if err := log.Append(ctx, Topic("t"), recs); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, len(recs))
	for i, r := range recs {
		offs[i] = r.Offset
	}
	return offs
}

func offsetsOf(entries []*wailv1.DeadLetterEntry) []int64 {
	var out []int64
	for _, e := range entries {
		out = append(out, e.Offset)
	}
	return out
}

func TestList(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	q := NewQueue(log, "t", 0)
	ctx := t.Context()
	if got, more, err := q.List(ctx, ListOptions{After: -1}); err != nil || len(got) != 0 || more {
		t.Fatalf("no topic: %v %v %v", got, more, err)
	}
	if _, err := q.Get(ctx, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get without a topic: %v", err)
	}
	var letters []*wailv1.DeadLetter
	for i := range 7 {
		letters = append(letters, letter(fmt.Sprintf("k%d", i), 0))
	}
	offs := appendLetters(t, log, letters...) // 0..6
	// Settle 1 (dropped), then 4 twice (redriven first: that one counts).
	res := []*wailv1.DeadLetterResolution{
		{Offset: 1, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED, AtUs: 5},
		{Offset: 4, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN, AtUs: 6, RedriveVersion: 77},
		{Offset: 4, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED, AtUs: 7},
	}
	if err := q.Settle(ctx, res); err != nil {
		t.Fatal(err)
	}
	// Garbage in the topic: a keyless record that is no resolution, a
	// letter record that does not decode, and a resolution of a later offset.
	future, _ := ResolutionRecord(&wailv1.DeadLetterResolution{Offset: 100, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED})
	if err := log.Append(ctx, Topic("t"), []*intentlog.Record{{Key: []byte{}, Value: []byte("junk")}, {Key: []byte("k"), Value: []byte{0xff}}, future}); err != nil {
		t.Fatal(err)
	}
	tail := appendLetters(t, log, letter("k7", 0)) // at 13
	tests := []struct {
		name string
		o    ListOptions
		want []int64
		more bool
	}{
		{"unsettled", ListOptions{After: -1}, []int64{0, 2, 3, 5, 6, tail[0]}, false},
		{"all", ListOptions{After: -1, IncludeSettled: true}, append(offs, tail[0]), false},
		{"page1", ListOptions{After: -1, Limit: 2}, []int64{0, 2}, true},
		{"page2", ListOptions{After: 2, Limit: 2}, []int64{3, 5}, true},
		{"page3", ListOptions{After: 5, Limit: 2}, []int64{6, tail[0]}, false},
		{"after_end", ListOptions{After: 1000}, nil, false},
		{"after_zero", ListOptions{After: 0, IncludeSettled: true, Limit: 1}, []int64{1}, true},
		{"limit_clamped", ListOptions{After: -1, Limit: 1 << 30}, []int64{0, 2, 3, 5, 6, tail[0]}, false},
	}
	for _, tc := range tests {
		got, more, err := q.List(ctx, tc.o)
		if err != nil || fmt.Sprint(offsetsOf(got)) != fmt.Sprint(tc.want) || more != tc.more {
			t.Errorf("%s: %v more=%v err=%v; want %v more=%v", tc.name, offsetsOf(got), more, err, tc.want, tc.more)
		}
		for _, e := range got {
			settled := e.Offset == 1 || e.Offset == 4
			if (e.Resolution != nil) != settled || e.Letter == nil || string(e.Letter.Key) != fmt.Sprintf("k%d", min(e.Offset, 7)) {
				t.Errorf("%s: entry %v", tc.name, e)
			}
		}
	}
	e, err := q.Get(ctx, 4)
	if err != nil || e.Resolution.GetRedriveVersion() != 77 || e.Resolution.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Errorf("Get(4) = %v, %v; want the first resolution (redriven, 77)", e, err)
	}
	for _, off := range []int64{7, 10, 11, 12, 99, -1} { // resolutions, garbage, a bad letter, past the end, negative
		if _, err := q.Get(ctx, off); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), fmt.Sprint(off)) {
			t.Errorf("Get(%d) = %v, want ErrNotFound naming it", off, err)
		}
	}
}

// FuzzFold: whatever the topic holds, the fold marks exactly the offsets
// that a well-formed earlier-pointing resolution names, and never panics.
// The input is a sequence of records: a flag byte (bit 0: keyless), a
// length byte and that many value bytes.
func FuzzFold(f *testing.F) {
	l, _ := LetterRecord(letter("k", 0))
	r1, _ := ResolutionRecord(&wailv1.DeadLetterResolution{Offset: 0, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED})
	r9, _ := ResolutionRecord(&wailv1.DeadLetterResolution{Offset: 9, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN})
	seed := func(recs ...*intentlog.Record) []byte {
		var b []byte
		for _, r := range recs {
			flag := byte(0)
			if len(r.Key) == 0 {
				flag = 1
			}
			b = append(append(b, flag, byte(len(r.Value))), r.Value...)
		}
		return b
	}
	f.Add(seed(l, r1, l, r9))
	f.Add(seed(r1, r1, r1))
	f.Add([]byte{1, 3, 0x10, 0x00, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []intentlog.Record
		for len(data) >= 2 {
			flag, n := data[0], int(data[1])
			data = data[2:]
			n = min(n, len(data))
			r := intentlog.Record{Value: data[:n], Offset: int64(len(recs))}
			if flag&1 == 0 {
				r.Key = []byte("k")
			}
			recs = append(recs, r)
			data = data[n:]
		}
		fo := newFolder(0, int64(len(recs)), 0)
		want := map[int64]bool{}
		for i := range recs {
			fo.add(&recs[i])
			if len(recs[i].Key) != 0 {
				continue
			}
			if m, err := Decode(recs[i].Value); err == nil && m.GetResolution() != nil && m.GetResolution().Offset < int64(i) {
				want[m.GetResolution().Offset] = true
			}
		}
		for off := int64(-2); off < int64(len(recs))+130; off++ {
			if fo.settled.has(off) != want[off] {
				t.Fatalf("offset %d: settled=%v, want %v", off, fo.settled.has(off), want[off])
			}
		}
	})
}

func TestOffsetSet(t *testing.T) {
	t.Parallel()
	s := newOffsetSet(1000, 1130)
	for _, off := range []int64{999, 1000, 1063, 1064, 1129, 1191, 1192, -5} {
		s.add(off)
	}
	for off, want := range map[int64]bool{999: false, 1000: true, 1063: true, 1064: true, 1065: false, 1129: true, 1191: true, 1192: false} {
		if s.has(off) != want {
			t.Errorf("has(%d) = %v, want %v", off, s.has(off), want)
		}
	}
	if len(s.bits) != 3 {
		t.Errorf("%d words for 130 offsets, want 3", len(s.bits))
	}
}

// TestListBytes: a page holds at most MaxBytes of letters (at least one),
// whatever the limit; settling works on slim letters.
func TestListBytes(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	q := NewQueue(log, "t", 0)
	var letters []*wailv1.DeadLetter
	for i := range 12 {
		l := letter(fmt.Sprintf("big%d", i), 0)
		l.Error = strings.Repeat("x", 700<<10) // 12 x 700 KiB: more than 2 pages
		letters = append(letters, l)
	}
	appendLetters(t, log, letters...)
	var all []int64
	for after, pages := int64(-1), 0; ; pages++ {
		page, more, err := q.List(t.Context(), ListOptions{After: after, Limit: MaxLimit})
		if err != nil || len(page) == 0 {
			t.Fatalf("page %d: %d letters, %v", pages, len(page), err)
		}
		if n := len(page) * (700 << 10); n > MaxBytes {
			t.Errorf("page %d holds %d letters, %d bytes: over %d", pages, len(page), n, MaxBytes)
		}
		if len(page[0].Letter.Error) != 700<<10 {
			t.Errorf("a listed letter lost its error")
		}
		all = append(all, offsetsOf(page)...)
		if !more {
			break
		}
		after = page[len(page)-1].Offset
	}
	if len(all) != 12 {
		t.Errorf("paged through %d letters, want 12: %v", len(all), all)
	}
	res, err := resolutions(q.Drop(t.Context(), Selection{All: true}, time.Now()))
	if err != nil || len(res) != 12 {
		t.Errorf("drop --all of big letters: %d, %v", len(res), err)
	}
}

// TestListLimits: no limit lists DefaultLimit letters, a limit above
// MaxLimit lists MaxLimit, each saying more follow.
func TestListLimits(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	q := NewQueue(log, "t", 0)
	letters := make([]*wailv1.DeadLetter, MaxLimit+1)
	for i := range letters {
		letters[i] = letter(fmt.Sprintf("k%d", i), 0)
	}
	appendLetters(t, log, letters...)
	for _, c := range []struct{ limit, want int }{{0, DefaultLimit}, {MaxLimit * 5, MaxLimit}, {7, 7}} {
		page, more, err := q.List(t.Context(), ListOptions{After: -1, Limit: c.limit})
		if err != nil || len(page) != c.want || !more {
			t.Errorf("limit %d: %d letters, more %v, %v; want %d and more", c.limit, len(page), more, err, c.want)
		}
	}
}
