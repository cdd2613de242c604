package dlq

import (
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Folding the topic. A letter's later records decide it, in topic order
// (one partition: every process sees the same order):
//
//   - a resolution settles an unsettled letter, unless a claim holds the
//     letter and the resolution does not carry that claim's id: then it is
//     void (a drop, or a redrive that lost, racing the claim's redrive);
//     the first resolution that settles a letter is the one that counts;
//     a resolution of another incarnation of the table (its
//     table_created_at_us) is void: the topic of a table dropped and
//     created again reuses the offsets of the one dropped;
//   - a claim (a sink's redrive about to send the letter) holds an
//     unsettled letter, taking over a claim of a lower or equal epoch; a
//     claim of a lower epoch than the holder's is void; a released claim
//     frees the letter if it still holds it.
//
// Records naming a letter after it is settled change nothing. A request
// that appended a resolution or a claim learns whether it won by folding
// again up to its record (Drop, Claim). A pass keeps which offsets are
// settled, one bit per record of the topic (a million records take 128
// KiB), and the claims that hold letters now, never the records.

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
// the set of settled offsets and the claims holding letters.
type folder struct {
	settled offsetSet
	// claims holds the claim on each letter a claim holds now.
	claims map[int64]*wailv1.DeadLetterClaim
	// invalid counts records that are not well-formed dead-letter records.
	invalid int
	// settles, when set, sees each resolution that settles a letter.
	settles func(*wailv1.DeadLetterResolution)
	// created is the table incarnation of the topic (Queue.created; 0:
	// any).
	created int64
	// end bounds the letters folded: records naming a letter at end or
	// after (one appended after the fold began: snapshot.catchUp) change
	// nothing.
	end int64
}

func newFolder(start, end, created int64) *folder {
	return &folder{settled: newOffsetSet(start, end), claims: map[int64]*wailv1.DeadLetterClaim{}, created: created, end: end}
}

// add folds one record. Letters carry a key (the row key or gap/<p>), so
// only keyless records are decoded: resolutions and claims.
func (f *folder) add(r *intentlog.Record) {
	if len(r.Key) != 0 {
		return
	}
	m, err := Decode(r.Value)
	if err != nil {
		f.invalid++
		return
	}
	switch {
	case m.GetResolution() != nil:
		f.resolve(r.Offset, m.GetResolution())
	case m.GetClaim() != nil:
		f.claim(r.Offset, m.GetClaim())
	default:
		f.invalid++ // a letter without a key
	}
}

// resolve folds the resolution at offset at.
func (f *folder) resolve(at int64, res *wailv1.DeadLetterResolution) {
	off := res.Offset
	if off >= at || off < f.settled.base || off >= f.end || f.settled.has(off) {
		return // not a letter of the fold's range, or settled
	}
	if c := f.claims[off]; c != nil && c.Id != res.ClaimId {
		return // void: a claim holds the letter
	}
	if res.TableCreatedAtUs != 0 && f.created != 0 && res.TableCreatedAtUs != f.created {
		return // void: of another incarnation of the table
	}
	delete(f.claims, off)
	f.settled.add(off)
	if f.settles != nil {
		f.settles(res)
	}
}

// claim folds the claim at offset at.
func (f *folder) claim(at int64, c *wailv1.DeadLetterClaim) {
	off := c.Offset
	if off >= at || off < f.settled.base || off >= f.end || f.settled.has(off) {
		return // not a letter of the fold's range, or settled
	}
	cur := f.claims[off]
	switch {
	case c.Released:
		if cur != nil && cur.Id == c.Id {
			delete(f.claims, off)
		}
	case cur == nil || cur.Epoch <= c.Epoch:
		f.claims[off] = c
	}
}
