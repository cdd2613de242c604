package dlq

import (
	"context"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// Drop settles the selected letters without an event (DROPPED) and answers
// the resolutions: the ones appended, then those of letters already
// settled; the first Selection.Limit of them, and how many in all. It
// goes page by page (all: up to MaxLimit letters; offsets: one page):
// it appends the page's resolutions, then folds the records appended to
// the topic since it last looked, up to its own, to see what settled each
// letter of the page. A letter that another request settled otherwise,
// or that a redrive's claim holds, before the drop's resolution (which is
// then void: fold.go) is not dropped, and the error (ErrRaced) says which
// and why, once every page is done. With all, a letter another request
// settled before the drop read its page is not one of the drop's: it is
// neither dropped nor answered. Memory: a page of letters, the first
// Selection.Limit resolutions and the first 100 letters lost to another
// request (the others are counted); the topic is read once, and then
// what is appended while the drop runs.
func (q *Queue) Drop(ctx context.Context, sel Selection, now time.Time) (Answer, error) {
	var out Answer
	if err := sel.check(); err != nil {
		return out, err
	}
	s, err := q.snapshot(ctx)
	if err != nil {
		return out, err
	}
	limit := sel.Answered()
	var lost RacedLetters
	settled, err := s.pass(ctx, sel, true, func(page []*wailv1.DeadLetterEntry) error {
		res := make([]*wailv1.DeadLetterResolution, len(page))
		first := make(map[int64]*wailv1.DeadLetterResolution, len(page))
		for i, e := range page {
			res[i] = &wailv1.DeadLetterResolution{Offset: e.Offset, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED, AtUs: now.UnixMicro()}
			first[e.Offset] = nil
		}
		if err := q.Settle(ctx, res); err != nil {
			return err
		}
		// The page's letters were unsettled as far as s had folded: what
		// settles them is in what was appended since, up to the drop's
		// own resolutions.
		if err := s.catchUp(ctx, func(r *wailv1.DeadLetterResolution) {
			if _, ok := first[r.Offset]; ok {
				first[r.Offset] = r
			}
		}); err != nil {
			return err
		}
		var dropped []*wailv1.DeadLetterResolution
		for _, e := range page {
			// DROPPED by this request or by another drop: dropped either way.
			if r := first[e.Offset]; r.GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
				dropped = append(dropped, r)
			} else {
				lost.Add(Raced{Offset: e.Offset, Resolution: r, Claim: s.f.claims[e.Offset]})
			}
		}
		out.Add(dropped, limit)
		return nil
	})
	if err != nil {
		return out, err
	}
	if lost.Len() > 0 {
		return out, q.RacedError("dropped", lost, out.Total)
	}
	out.Add(settled, limit)
	return out, nil
}
