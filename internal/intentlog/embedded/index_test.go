package embedded

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestParseIndex: an .idx is trusted only when every entry points inside
// the log (a position equal to the log's size is past its last byte),
// the first entry is the first batch, and offsets and positions
// increase; anything else is refused, so that the segment's index is
// rebuilt from the log.
func TestParseIndex(t *testing.T) {
	cases := []struct {
		name    string
		entries []indexEntry
		size    int64
		want    string // "" when it must parse
	}{
		{"one entry", []indexEntry{{0, 0, 7}}, 33, ""},
		{"last entry at the last byte", []indexEntry{{0, 0, 7}, {3, 100, 8}}, 101, ""},
		{"last entry at the log's size", []indexEntry{{0, 0, 7}, {3, 100, 8}}, 100, "index entry 1 points beyond the log end"},
		{"first entry at the log's size", []indexEntry{{0, 0, 7}}, 0, "index entry 0 points beyond the log end"},
		{"first entry not at offset 0", []indexEntry{{1, 0, 7}}, 33, "first index entry is not the first batch"},
		{"first entry not at position 0", []indexEntry{{0, 1, 7}}, 33, "first index entry is not the first batch"},
		{"offsets repeat", []indexEntry{{0, 0, 7}, {0, 40, 8}}, 100, "index entry 1 out of order"},
		{"positions repeat", []indexEntry{{0, 0, 7}, {2, 0, 8}}, 100, "index entry 1 out of order"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIndex(encodeIndex(tc.entries), tc.size)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("parseIndex: %v", err)
			case tc.want == "" && !slices.Equal(got, tc.entries):
				t.Fatalf("parseIndex = %v, want %v", got, tc.entries)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("parseIndex = %v, %v; want an error saying %q", got, err, tc.want)
			}
		})
	}
	if _, err := parseIndex(make([]byte, indexEntryLen+1), 100); err == nil {
		t.Fatal("parseIndex took an index whose length is not a multiple of the entry size")
	}
}

// TestScanRelOffsetLimit: the writer fills a segment up to maxRelOffset
// records past its base (partition.go rolls only when a batch would end
// beyond it), so a scan takes a batch ending exactly there and refuses
// one ending a record further as corrupt.
func TestScanRelOffsetLimit(t *testing.T) {
	const segBase = 1000
	cases := []struct {
		name string
		base int64 // of the one-record batch
		ok   bool
	}{
		{"ends one record short of the limit", segBase + maxRelOffset - 2, true},
		{"ends exactly at the limit", segBase + maxRelOffset - 1, true},
		{"ends one record past the limit", segBase + maxRelOffset, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := rawBatch(tc.base, 1, varints(0, -1, -1, 0)...)
			s := &scan{base: segBase, interval: 1 << 20, next: tc.base, maxTS: math.MinInt64}
			err := s.run(bytes.NewReader(b), int64(len(b)), true)
			if !tc.ok {
				if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "too far from segment base") || s.pos != 0 {
					t.Fatalf("scan of a batch ending at %d past the base: %v at %d; want ErrCorrupt at 0", tc.base+1-segBase, err, s.pos)
				}
				return
			}
			noErr(t, err)
			if s.next != tc.base+1 || s.pos != int64(len(b)) || len(s.index) != 1 || s.index[0].rel != uint32(tc.base-segBase) {
				t.Fatalf("scan ended at offset %d, position %d, index %v", s.next, s.pos, s.index)
			}
		})
	}
}
