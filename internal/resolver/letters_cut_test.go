package resolver

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestFitLettersEveryLimit: for every record limit over a range, a
// letter's intents are cut in records that each fit it (fitLetters'
// estimate of a record's size never falls short, whatever intent lands
// last in a record), that hold every intent once in order, and that are
// not cut shorter than they need: each record but the last would not fit
// with the next intent too (within the estimate's margins).
func TestFitLettersEveryLimit(t *testing.T) {
	t.Parallel()
	// small offsets (their estimate, the longest varint, has bytes to
	// spare), and the largest (it has none: only the slack is left)
	for _, base := range []int64{0, 1<<63 - 1<<20} {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			t.Parallel()
			fitEveryLimit(t, base)
		})
	}
}

var letterT0 = time.UnixMilli(1_700_000_000_000)

// testLetter returns a letter of n intents of varied sizes (ids of 0 to
// 300 bytes), at offsets from base on, and the template of its records.
func testLetter(n int, base int64) (*Letter, *wailv1.DeadLetter) {
	t0 := letterT0
	lt := &Letter{Key: []byte("hot"), Kind: LetterRead, Err: "boom", Attempts: 3, FirstAttempt: t0, LastAttempt: t0}
	for i := range n {
		lt.Intents = append(lt.Intents, intent.Intent{Table: "t", Key: lt.Key, Op: intent.Upsert, Version: uint64(i+1) << 20,
			ID: strings.Repeat("i", (i*37)%301), CreatedAt: t0})
		lt.Offsets = append(lt.Offsets, base+int64(i)*1000+int64(i%7))
	}
	tmpl := &wailv1.DeadLetter{Table: "t", Partition: 3, Key: lt.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
		Error: lt.Err, Attempts: 3, FirstAttemptUs: t0.UnixMicro(), LastAttemptUs: t0.UnixMicro(), ResolverId: "r", DeadAtUs: t0.UnixMicro()}
	return lt, tmpl
}

func fitEveryLimit(t *testing.T, base int64) {
	lt, tmpl := testLetter(120, base)
	for limit := 1200; limit <= 6000; limit++ {
		ds, ok := fitLetters(tmpl, lt, limit, false)
		if !ok {
			t.Fatalf("limit %d: the intents do not fit, one alone fits", limit)
		}
		var offsets []int64
		for k, d := range ds {
			b := letterBytes(d)
			if b == 0 || b > limit {
				t.Fatalf("limit %d: record %d of %d takes %d bytes", limit, k, len(ds), b)
			}
			if len(d.Intents) != len(d.IntentOffsets) {
				t.Fatalf("limit %d: record %d holds %d intents at %d offsets", limit, k, len(d.Intents), len(d.IntentOffsets))
			}
			if k < len(ds)-1 {
				more := ds[k].IntentOffsets
				next := ds[k+1]
				d2 := proto.Clone(d).(*wailv1.DeadLetter)
				d2.Intents = append(d2.Intents, next.Intents[0])
				d2.IntentOffsets = append(more[:len(more):len(more)], next.IntentOffsets[0])
				// the estimate counts each offset as its longest varint,
				// and slack for the record's lengths
				if letterBytes(d2)+48+10*len(d2.Intents) <= limit {
					t.Fatalf("limit %d: record %d (%d bytes) was cut short: with the next intent it takes %d", limit, k, b, letterBytes(d2))
				}
			}
			offsets = append(offsets, d.IntentOffsets...)
		}
		if got, want := fmt.Sprint(offsets), fmt.Sprint(lt.Offsets); got != want {
			t.Fatalf("limit %d: the records hold offsets %s, want %s", limit, got, want)
		}
	}
}

// TestFitLettersAtTheLimit: a record that takes exactly the limit fits:
// a letter of one intent whose record takes limit bytes keeps the
// intent's key and table (it is not made compact); a record whose
// estimate comes to exactly the limit takes the intent too.
func TestFitLettersAtTheLimit(t *testing.T) {
	t.Parallel()
	lt, tmpl := testLetter(1, 0)
	whole, _ := fitLetters(tmpl, lt, DefaultAppendBytes, false)
	limit := letterBytes(whole[0])
	ds, ok := fitLetters(tmpl, lt, limit, false)
	if !ok || len(ds) != 1 || len(ds[0].Intents) != 1 || string(ds[0].Intents[0].Key) != "hot" || ds[0].Intents[0].Table != "t" {
		t.Fatalf("a record of exactly the limit (%d bytes): fit %v, records %v", limit, ok, ds)
	}
	// the estimate fitLetters makes of a record of two intents
	lt, tmpl = testLetter(2, 0)
	est := intentlog.FramedSize(len(tmpl.Key), proto.Size(&wailv1.DeadLetterRecord{Entry: &wailv1.DeadLetterRecord_Letter{Letter: tmpl}})) + 24
	for i := range lt.Intents {
		n := proto.Size(lt.Intents[i].Proto())
		est += 1 + intentlog.VarintLen(int64(n)) + n + binary.MaxVarintLen64
	}
	if ds, ok := fitLetters(tmpl, lt, est, false); !ok || len(ds) != 1 {
		t.Fatalf("two intents whose estimate is the limit (%d bytes): fit %v, %d records, want 1", est, ok, len(ds))
	}
	if ds, _ := fitLetters(tmpl, lt, est-1, false); len(ds) != 2 {
		t.Fatalf("two intents whose estimate is a byte over the limit (%d bytes): %d records, want 2", est-1, len(ds))
	}
}

// TestFitLettersIntentBytes: a record holds at most maxLetterIntentBytes
// of intents: exactly that many bytes go in one record, a byte more in
// two.
func TestFitLettersIntentBytes(t *testing.T) {
	t.Parallel()
	lt, tmpl := testLetter(0, 0)
	add := func(size int) {
		t.Helper()
		for l := range size {
			in := intent.Intent{Table: "t", Key: lt.Key, Op: intent.Upsert, Version: 7, ID: strings.Repeat("i", l), CreatedAt: letterT0}
			if proto.Size(in.Proto()) == size {
				lt.Intents = append(lt.Intents, in)
				lt.Offsets = append(lt.Offsets, int64(len(lt.Offsets)))
				return
			}
		}
		t.Fatalf("no intent of %d bytes", size)
	}
	for range maxLetterIntentBytes/1000 - 1 {
		add(1000)
	}
	last := maxLetterIntentBytes - 1000*(maxLetterIntentBytes/1000-1)
	add(last)
	if ds, ok := fitLetters(tmpl, lt, 4*DefaultAppendBytes, false); !ok || len(ds) != 1 {
		t.Fatalf("intents of %d bytes in all: fit %v, %d records, want 1", maxLetterIntentBytes, ok, len(ds))
	}
	lt.Intents, lt.Offsets = lt.Intents[:len(lt.Intents)-1], lt.Offsets[:len(lt.Offsets)-1]
	add(last + 1)
	if ds, _ := fitLetters(tmpl, lt, 4*DefaultAppendBytes, false); len(ds) != 2 {
		t.Fatalf("intents of %d bytes in all: %d records, want 2", maxLetterIntentBytes+1, len(ds))
	}
}

// TestCutError: an error detail of at most max bytes is kept as it is;
// a longer one is cut to max bytes at a rune's start, saying how long it
// was.
func TestCutError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, err string
		max       int
		want      string
	}{
		{"shorter", "boom", 300, "boom"},
		{"exactly max", strings.Repeat("a", 300), 300, strings.Repeat("a", 300)},
		{"a byte over", strings.Repeat("a", 301), 300, strings.Repeat("a", 300-28) + " ... (cut: 301 bytes in all)"},
		{"cut inside a rune", strings.Repeat("a", 271) + "é" + strings.Repeat("b", 100), 300,
			strings.Repeat("a", 271) + " ... (cut: 373 bytes in all)"},
		{"not UTF-8", "key \xff", 300, "key \uFFFD"},
	} {
		got := cutError(tc.err, tc.max)
		if got != tc.want || len(got) > tc.max {
			t.Errorf("%s: cutError gave %q (%d bytes), want %q", tc.name, got, len(got), tc.want)
		}
	}
}
