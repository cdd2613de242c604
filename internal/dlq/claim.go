package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// Claims: a sink's redrive sends a letter's event to an endpoint, which no
// log append can undo, so it first claims the letter (fold.go): it appends
// a claim, folds the topic again, and sends only the letters its claim
// holds; it settles them with resolutions carrying the claim's id, or
// releases them. A drop, which appends its resolutions without a claim,
// folds again too: each letter ends in one outcome, and the request that
// lost learns it (ErrRaced). The claim's epoch is the group epoch of the
// letter's bus partition: a process that delivers the partition now takes
// over the claim of one that died or lost it (its own claim wins over that
// one's, never the other way round).

// ErrRaced: another request settled, or holds, a dead letter that this one
// found unsettled (a drop racing a redrive, or a redrive racing another
// process's). The letter was not acted on by the request that got it.
var ErrRaced = errors.New("another request acted on the dead letter first")

// Claim names a redrive's hold on letters.
type Claim struct {
	// ID is unique to one redrive request.
	ID string
	// Epoch is the group epoch of the letters' bus partition that the
	// claimant holds.
	Epoch uint64
	// Holder names the claimant in other requests' errors.
	Holder string
}

// Claimed is what a claim got, per offset.
type Claimed struct {
	// Won: the letters the claim holds: send them, then Settle them with
	// resolutions carrying the claim's ID, or Release them.
	Won []int64
	// Settled: the resolutions of letters settled before the claim.
	Settled map[int64]*wailv1.DeadLetterResolution
	// Held: the claims of other requests holding letters.
	Held map[int64]*wailv1.DeadLetterClaim
}

// Claim claims the letters at offsets (unsettled ones when the caller
// read them) and folds the topic again to see which it holds.
func (q *Queue) Claim(ctx context.Context, c Claim, offsets []int64, now time.Time) (Claimed, error) {
	if len(offsets) == 0 {
		return Claimed{}, nil
	}
	recs := make([]*wailv1.DeadLetterClaim, len(offsets))
	for i, off := range offsets {
		recs[i] = &wailv1.DeadLetterClaim{Offset: off, Id: c.ID, Epoch: c.Epoch, AtUs: now.UnixMicro(), Holder: c.Holder}
	}
	if err := q.appendClaims(ctx, recs); err != nil {
		return Claimed{}, err
	}
	o, err := q.outcomes(ctx, offsets)
	if err != nil {
		return Claimed{}, err
	}
	out := Claimed{Settled: o.settled, Held: map[int64]*wailv1.DeadLetterClaim{}}
	for off, h := range o.held {
		if h.Id == c.ID {
			out.Won = append(out.Won, off)
		} else {
			out.Held[off] = h
		}
	}
	slices.Sort(out.Won)
	return out, nil
}

// Release frees the letters at offsets that claim c holds (their sends did
// not happen, or failed): they are unsettled again.
func (q *Queue) Release(ctx context.Context, c Claim, offsets []int64, now time.Time) error {
	recs := make([]*wailv1.DeadLetterClaim, len(offsets))
	for i, off := range offsets {
		recs[i] = &wailv1.DeadLetterClaim{Offset: off, Id: c.ID, Epoch: c.Epoch, AtUs: now.UnixMicro(), Holder: c.Holder, Released: true}
	}
	return q.appendClaims(ctx, recs)
}

func (q *Queue) appendClaims(ctx context.Context, claims []*wailv1.DeadLetterClaim) error {
	return appendAll(ctx, q, "claim", claims, ClaimRecord)
}

// outcome is where letters stand after a fold of the whole topic.
type outcome struct {
	settled map[int64]*wailv1.DeadLetterResolution
	held    map[int64]*wailv1.DeadLetterClaim
}

// outcomes folds the topic as it is now and says, for each of offsets,
// what settled it or what claim holds it (neither: unsettled).
func (q *Queue) outcomes(ctx context.Context, offsets []int64) (outcome, error) {
	s, err := q.snapshot(ctx)
	if err != nil {
		return outcome{}, err
	}
	o := outcome{settled: map[int64]*wailv1.DeadLetterResolution{}, held: map[int64]*wailv1.DeadLetterClaim{}}
	var settled []*wailv1.DeadLetterEntry
	for _, off := range offsets {
		switch c := s.f.claims[off]; {
		case s.f.settled.has(off):
			settled = append(settled, &wailv1.DeadLetterEntry{Offset: off})
		case c != nil:
			o.held[off] = c
		}
	}
	if err := s.resolutions(ctx, settled); err != nil {
		return outcome{}, err
	}
	for _, e := range settled {
		o.settled[e.Offset] = e.Resolution
	}
	return o, nil
}

// Raced is a letter another request acted on first: its resolution, or
// the claim that holds it.
type Raced struct {
	Offset     int64
	Resolution *wailv1.DeadLetterResolution
	Claim      *wailv1.DeadLetterClaim
}

// RacedLetters are the letters another request acted on first: the
// first ones (up to 100, to name them), and how many.
type RacedLetters struct {
	first []Raced
	n     int
}

// Add counts a letter lost to another request (and keeps it to name it,
// among the first).
func (r *RacedLetters) Add(l Raced) {
	r.n++
	if len(r.first) < maxNamed {
		r.first = append(r.first, l)
	}
}

// Len counts the letters.
func (r RacedLetters) Len() int { return r.n }

// RacedError is the ErrRaced error of a request (what: "dropped",
// "redriven") that lost the letters of lost, and acted on done others.
// Letters in the same state are named together, the first 100 of them.
func (q *Queue) RacedError(what string, lost RacedLetters, done int64) error {
	first := slices.Clone(lost.first)
	slices.SortFunc(first, func(a, b Raced) int { return cmp.Compare(a.Offset, b.Offset) })
	offs := make([]int64, len(first))
	var states []string
	byState := map[string][]int64{}
	for i, l := range first {
		offs[i] = l.Offset
		st := raceState(l)
		if byState[st] == nil {
			states = append(states, st)
		}
		byState[st] = append(byState[st], l.Offset)
	}
	why := make([]string, len(states))
	for i, st := range states {
		why[i] = fmt.Sprintf("%v %s", byState[st], st)
	}
	named := fmt.Sprintf("%v", offs)
	if more := lost.n - len(first); more > 0 {
		named = fmt.Sprintf("%v and %d more (%d in all; `%s --include-settled` lists them)", offs, more, lost.n, q.command("ls"))
	}
	others := ""
	switch {
	case done == 1:
		others = "; the other one was " + what
	case done > 1:
		others = fmt.Sprintf("; the %d others were %s", done, what)
	}
	return fmt.Errorf("%w: dead letters %s of %s were not %s: %s; `%s` shows where a letter stands "+
		"(act on it again if it is still unsettled)%s",
		ErrRaced, named, q.name, what, strings.Join(why, "; "), q.command("show", offs[0]), others)
}

// raceState says what became of a letter another request acted on.
func raceState(l Raced) string {
	if c := l.Claim; c != nil {
		return fmt.Sprintf("being redriven by %s since %s", c.Holder, time.UnixMicro(c.AtUs).UTC().Format(time.RFC3339Nano))
	}
	r := l.Resolution
	if r == nil {
		return "held by a redrive's claim when this request acted on them (unsettled again now)"
	}
	switch r.GetAction() {
	case wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED:
		return "dropped meanwhile"
	case wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
		return fmt.Sprintf("settled superseded meanwhile (v%d at bus offset %d)", r.GetSupersededByVersion(), r.GetSupersededByOffset())
	case wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN:
		if r.GetClaimId() != "" {
			return fmt.Sprintf("redriven meanwhile (the endpoint took v%d)", r.GetRedriveVersion())
		}
		return "redriven meanwhile"
	}
	return "settled meanwhile"
}
