package embedded

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestHeaderDamageIsNotTornTail: one run of damaged bytes that keeps the
// magic byte but covers the length field and another header field (or a
// record byte) of a batch followed by valid batches. Open refuses it, and
// Repair removes only that batch: the damaged length declares an end past
// the valid batches, but the batch's records end where the next batch
// starts.
func TestHeaderDamageIsNotTornTail(t *testing.T) {
	const batches, per, perSeg = 20, 3, 4
	cases := []struct {
		name      string
		seg, b    int
		damage    func(t *testing.T, path string, pos int64)
		openFails bool
		lost      [2]int64
	}{
		{"active: length and crc", 4, 1, setBytes(1, 0x7f, 0, 0, 0, 0, 0, 0, 0), true, [2]int64{51, 54}},
		{"active: length and base", 4, 0, setBytes(3, 0x7f, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), true, [2]int64{48, 51}},
		{"active: length and a record byte", 4, 1, func(t *testing.T, path string, pos int64) {
			setBytes(1, 0x7f)(t, path, pos)
			flipByte(40)(t, path, pos)
		}, true, [2]int64{51, 54}},
		{"sealed: length and crc, index removed", 2, 1, removeIndexAnd(setBytes(1, 0x7f, 0, 0, 0, 0, 0, 0, 0)), true, [2]int64{27, 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const batchBytes = batchHeaderLen + per*23
			opts := Options{SegmentBytes: perSeg * batchBytes, IndexIntervalBytes: 3 * batchBytes}
			l := openLog(t, dir, opts)
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			var want []intentlog.Record
			for i := range batches {
				want = append(want, appendBatch(t, l, fmt.Sprintf("b%02d", i), per)...)
			}
			noErr(t, l.Close())
			path := segmentFiles(t, dir, 0, logExt)[tc.seg]
			pos := batchPositions(t, path)[tc.b]
			tc.damage(t, path, pos)

			// Repair on a copy first: Open may truncate the original.
			rdir := t.TempDir()
			noErr(t, os.CopyFS(rdir, os.DirFS(dir)))

			l, err := Open(dir, Options{Logger: testLogger(t)})
			if err == nil {
				recs := readAll(t, l, 0)
				noErr(t, l.Close())
				t.Errorf("Open accepted damage at %s position %d, truncating it as a torn tail: %d of %d acknowledged records left",
					path, pos, len(recs), len(want))
			} else if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "wail log repair") {
				t.Errorf("Open: %v; want ErrCorrupt", err)
			}

			rep, err := Repair(rdir, Options{Logger: testLogger(t)})
			noErr(t, err)
			if len(rep.Lost) != 1 || rep.Lost[0].From != tc.lost[0] || rep.Lost[0].To != tc.lost[1] {
				t.Errorf("repair lost %+v; want offsets [%d, %d) (only the damaged batch)", rep.Lost, tc.lost[0], tc.lost[1])
			}
		})
	}
}
