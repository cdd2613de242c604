package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestDamageSweep: runs of random bytes at every position of the first of
// four batches (their values hold an encoded batch, as a client may send):
// recovery never takes the damage for a torn tail, which would drop the
// three valid batches after it.
func TestDamageSweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inner := encodeBatch(nil, 1<<40, 0, []intentlog.Record{{Key: []byte("x"), Timestamp: time.UnixMicro(0)}})
	var seg []byte
	for b := range 4 {
		recs := []intentlog.Record{}
		for i := range 3 {
			recs = append(recs, intentlog.Record{Key: []byte(fmt.Sprintf("k%d-%d", b, i)),
				Value: append(append([]byte("v"), inner...), "tail"...), Timestamp: time.UnixMicro(7)})
		}
		seg = encodeBatch(seg, int64(3*b), 7, recs)
	}
	first, _ := frameSize(seg)
	truncs := map[string]int{}
	total := 0
	for start := int64(0); start < first; start++ {
		for _, n := range []int64{1, 2, 4, 8, 16, 40} {
			for range 6 {
				d := bytes.Clone(seg)
				for i := start; i < min(start+n, first); i++ {
					d[i] = byte(rng.Uint32())
				}
				if start == 0 && d[0] != batchMagic && rng.IntN(2) == 0 {
					d[0] = batchMagic // sometimes the magic survives
				}
				r := bytes.NewReader(d)
				sc := &scan{base: 0, interval: math.MaxInt64, next: 0, maxTS: math.MinInt64}
				err := sc.run(r, int64(len(d)), true)
				if err == nil || !errors.Is(err, intentlog.ErrCorrupt) {
					continue
				}
				total++
				_, _, found, ferr := resumeAt(r, sc.pos, int64(len(d)), sc.next, math.MinInt64)
				noErr(t, ferr)
				if !found {
					truncs[fmt.Sprintf("run at %d..%d", start, min(start+n, first))]++
				}
			}
		}
	}
	n := 0
	for _, c := range truncs {
		n += c
	}
	if n > 0 {
		ex := 0
		for k, c := range truncs {
			if ex++; ex <= 8 {
				t.Logf("%s: %d", k, c)
			}
		}
		t.Errorf("%d of %d damaged segments taken for a torn tail (acknowledged batches dropped)", n, total)
	}
}
