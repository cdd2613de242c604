package embedded

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTornSweep: a torn prefix of a batch whose keys, values and header
// keys and values hold encoded batches, cut at every length, is a torn
// tail (never refused).
func TestTornSweep(t *testing.T) {
	inner := encodeBatch(nil, 1<<40, 0, []intentlog.Record{{Key: []byte("x"), Timestamp: time.UnixMicro(0)}})
	seg := encodeBatch(nil, 0, 7, []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: time.UnixMicro(7)}})
	pos := int64(len(seg))
	recs := []intentlog.Record{
		{Key: inner, Value: inner, Timestamp: time.UnixMicro(7)},
		{Key: nil, Value: bytes.Repeat(inner, 3), Timestamp: time.UnixMicro(7),
			Headers: []intentlog.Header{{Key: string(inner), Value: inner}, {Key: "h", Value: nil}}},
		{Key: []byte("k"), Value: append(inner[:10:10], inner...), Timestamp: time.UnixMicro(7)},
	}
	seg = encodeBatch(seg, 1, 7, recs)
	refused := 0
	for cut := pos + 1; cut < int64(len(seg)); cut++ {
		d := seg[:cut]
		r := bytes.NewReader(d)
		sc := &scan{base: 0, interval: math.MaxInt64, next: 0, maxTS: math.MinInt64}
		err := sc.run(r, cut, true)
		if !errors.Is(err, intentlog.ErrCorrupt) || sc.pos != pos {
			t.Fatalf("cut %d: scan %v at %d", cut, err, sc.pos)
		}
		q, _, found, ferr := resumeAt(r, sc.pos, cut, sc.next, math.MinInt64)
		noErr(t, ferr)
		if found {
			if refused++; refused < 5 {
				t.Logf("cut at %d: a batch at %d taken for one after the torn batch", cut, q)
			}
		}
	}
	if refused > 0 {
		t.Errorf("%d torn tails refused", refused)
	}
}
