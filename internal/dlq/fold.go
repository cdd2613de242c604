package dlq

import (
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Folding the topic. A dead letter is settled once a later resolution
// record names its offset; the first such resolution is the one that
// counts (two operators may settle a letter at once: both records stay).
// A pass over the topic keeps only which offsets are settled, one bit per
// record of the topic (a million records take 128 KiB), never the records
// themselves.

// offsetSet is a set of offsets in [base, base+64*len(bits)).
type offsetSet struct {
	base int64
	bits []uint64
}

func newOffsetSet(start, end int64) offsetSet {
	return offsetSet{base: start, bits: make([]uint64, (max(end-start, 0)+63)/64)}
}

func (s *offsetSet) add(off int64) {
	if i := off - s.base; i >= 0 && i < int64(len(s.bits))*64 {
		s.bits[i/64] |= 1 << (i % 64)
	}
}

func (s *offsetSet) has(off int64) bool {
	i := off - s.base
	return i >= 0 && i < int64(len(s.bits))*64 && s.bits[i/64]&(1<<(i%64)) != 0
}

// folder folds the records of [start, end) of a dead-letter topic into
// the set of settled offsets.
type folder struct {
	settled offsetSet
	// invalid counts records that are not well-formed dead-letter records.
	invalid int
}

func newFolder(start, end int64) *folder {
	return &folder{settled: newOffsetSet(start, end)}
}

// add folds one record. Letters carry a key (the row key or gap/<p>), so
// only keyless records are decoded: resolutions.
func (f *folder) add(r *intentlog.Record) {
	if len(r.Key) != 0 {
		return
	}
	m, err := Decode(r.Value)
	if err != nil || m.GetResolution() == nil {
		f.invalid++
		return
	}
	if off := m.GetResolution().Offset; off < r.Offset {
		f.settled.add(off)
	}
}
