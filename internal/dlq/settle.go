package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/reconcile"
)

// Redrive and drop. Both act on a selection of dead letters and append one
// resolution per letter they settle. A letter already settled is not acted
// on again: its first resolution is returned as it is, so repeating a
// request (a retry after a lost answer) is harmless. Two operators acting
// on one letter at once both append a resolution; the first one in the
// topic counts (fold.go), and a drop that lost to another outcome fails
// with ErrRaced. A sink's redrive claims letters first (claim.go).
//
// Redrive of a key's dead letter resolves the key again from the store's
// current state (reconcile.Keys: an intent with the stored version and the
// key's last version on the bus as published_floor, when the bus is behind)
// and appends REDRIVEN only once that intent is durable: a crash in
// between leaves the letter unsettled, and redriving it again logs at most
// one more intent, which the resolver finds covered. Redrive of a GAP
// letter reconciles the gap's partition (reconcile.Run on it): the lost
// intents' keys are unknown, so every key of the partition is compared
// with the bus.

// Selection names dead letters: explicit offsets, or every unsettled one.
type Selection struct {
	Offsets []int64
	All     bool
	// Limit bounds the resolutions a redrive or a drop answers (0, or
	// more than MaxLimit: MaxLimit); it counts the others (Answer.Total).
	Limit int
}

// Answered returns the bound of the resolutions a request answers.
func (sel Selection) Answered() int {
	if sel.Limit <= 0 || sel.Limit > MaxLimit {
		return MaxLimit
	}
	return sel.Limit
}

// maxNamed bounds the letters a redrive keeps to name in its error (and
// in the drop command it suggests), per reason they were left unsettled.
const maxNamed = 100

// unsettledLetters are letters a redrive left unsettled for one reason:
// the first maxNamed of them (their keys and offsets), and how many.
type unsettledLetters struct {
	keys    []reconcile.Key
	offsets []int64
	n       int
}

func (u *unsettledLetters) add(k reconcile.Key, offset int64) {
	u.n++
	if len(u.keys) < maxNamed {
		u.keys = append(u.keys, k)
		u.offsets = append(u.offsets, offset)
	}
}

// ErrBadSelection: a selection with neither offsets nor all, both, or more
// than MaxLimit offsets.
var ErrBadSelection = errors.New("invalid selection of dead letters")

// ErrExpired: a key letter was not redriven because its key has no event
// left on the bus and its stored version is older than the bus's retained
// events (reconcile.Expired): publishing it could repeat a version.
var ErrExpired = errors.New("the key's event may have expired from the bus")

// ErrUnreadable: a key letter was not redriven because its key could not
// be read from the store (reconcile.Key.Err).
var ErrUnreadable = errors.New("the key could not be read from the store")

func (sel Selection) check() error {
	switch {
	case sel.All && len(sel.Offsets) > 0:
		return fmt.Errorf("%w: give offsets or all, not both", ErrBadSelection)
	case !sel.All && len(sel.Offsets) == 0:
		return fmt.Errorf("%w: give the offsets of dead letters, or all", ErrBadSelection)
	case len(sel.Offsets) > MaxLimit:
		return fmt.Errorf("%w: %d offsets, at most %d in one request", ErrBadSelection, len(sel.Offsets), MaxLimit)
	}
	for _, off := range sel.Offsets {
		if off < 0 {
			return fmt.Errorf("%w: offset %d", ErrBadSelection, off)
		}
	}
	return nil
}

// each calls fn with the unsettled letters selected (slim: see pick), in
// batches of at most MaxLimit (all of them: paging through one snapshot of
// the topic), and returns the first resolutions of the settled letters
// selected. Memory: a batch's keys.
func (q *Queue) each(ctx context.Context, sel Selection, fn func([]*wailv1.DeadLetterEntry) error) ([]*wailv1.DeadLetterResolution, error) {
	return q.pass(ctx, sel, true, fn)
}

// Open calls fn with the unsettled letters selected, whole (pages of at
// most MaxLimit letters and MaxBytes of them with all; explicit offsets in
// one batch), and returns the first resolutions of the settled letters
// selected: for a caller that settles letters its own way (a sink's
// redrive), with Settle.
func (q *Queue) Open(ctx context.Context, sel Selection, fn func([]*wailv1.DeadLetterEntry) error) ([]*wailv1.DeadLetterResolution, error) {
	return q.pass(ctx, sel, false, fn)
}

func (q *Queue) pass(ctx context.Context, sel Selection, slim bool, fn func([]*wailv1.DeadLetterEntry) error) ([]*wailv1.DeadLetterResolution, error) {
	if err := sel.check(); err != nil {
		return nil, err
	}
	s, err := q.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.pass(ctx, sel, slim, fn)
}

// pass is Queue.pass on s: with all, a page holds the letters unsettled
// as s folded the topic when the page was read (s.catchUp between pages
// leaves out those another request settled meanwhile).
func (s *snapshot) pass(ctx context.Context, sel Selection, slim bool, fn func([]*wailv1.DeadLetterEntry) error) ([]*wailv1.DeadLetterResolution, error) {
	if !sel.All {
		entries, err := s.entries(ctx, sel.Offsets, slim)
		if err != nil {
			return nil, err
		}
		var open []*wailv1.DeadLetterEntry
		var settled []*wailv1.DeadLetterResolution
		seen := map[int64]bool{}
		for _, e := range entries {
			switch {
			case seen[e.Offset]:
			case e.Resolution != nil:
				settled = append(settled, e.Resolution)
			default:
				open = append(open, e)
			}
			seen[e.Offset] = true
		}
		if len(open) == 0 {
			return settled, nil
		}
		return settled, fn(open)
	}
	for after := int64(-1); ; {
		p := pick{after: after, limit: MaxLimit, slim: slim, keep: func(_ int64, settled bool) bool { return !settled }}
		if !slim {
			p.maxBytes = MaxBytes
		}
		page, more, err := s.letters(ctx, p)
		if err != nil {
			return nil, err
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return nil, err
			}
			after = page[len(page)-1].Offset
		}
		if !more {
			return nil, nil
		}
	}
}

// Answer is the resolutions a redrive or a drop answers.
type Answer struct {
	// Resolutions: the ones appended, then those of letters already
	// settled; the first Selection.Limit of them.
	Resolutions []*wailv1.DeadLetterResolution
	// Total counts the letters settled, by this request or before: the
	// resolutions there would be without the limit.
	Total int64
}

// Add adds resolutions to the answer: it keeps them up to limit
// (Selection.Answered) and counts them all.
func (a *Answer) Add(res []*wailv1.DeadLetterResolution, limit int) {
	a.Total += int64(len(res))
	room := max(limit-len(a.Resolutions), 0)
	a.Resolutions = append(a.Resolutions, res[:min(room, len(res))]...)
}

// Redriven is what a redrive did.
type Redriven struct {
	Answer
	// Gap is the reconcile of the partitions of the GAP letters (nil when
	// there were none).
	Gap *reconcile.Report
}

// Redrive resolves the keys of the selected letters again (see the top of
// this file) and settles them (REDRIVEN). o and t say how to reconcile and
// where. A letter of intents (PUBLISH, READ: not SNAPSHOT) whose key is expired
// (reconcile.Expired: no event left on the bus, a stored version older
// than its retained events) is neither resolved nor settled: the other letters are, and the error
// (ErrExpired) names it. It answers the resolution that settled each
// letter: another request's, when that one was appended first (a drop
// racing the redrive: the key was resolved again all the same; another
// redrive, whose RedriveVersion is 0 when it found the key in flight or
// up to date by this one's intent).
// Memory: a batch's letters, and the first Selection.Limit resolutions
// (the others are counted).
func (q *Queue) Redrive(ctx context.Context, sel Selection, o reconcile.Options, t reconcile.Table) (Redriven, error) {
	var out Redriven
	var gaps []*wailv1.DeadLetterEntry
	var expired, unreadable unsettledLetters
	var errs []error
	limit := sel.Answered()
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	o.IDPrefix = "redrive"
	settled, err := q.each(ctx, sel, func(batch []*wailv1.DeadLetterEntry) error {
		var letters []*wailv1.DeadLetterEntry
		var keys [][]byte
		for _, e := range batch {
			if e.Letter.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
				gaps = append(gaps, e)
				continue
			}
			letters = append(letters, e)
			keys = append(keys, e.Letter.Key)
		}
		if len(keys) == 0 {
			return nil
		}
		got, err := reconcile.Keys(ctx, o, t, keys)
		if err != nil {
			return err
		}
		var res []*wailv1.DeadLetterResolution
		for i, e := range letters {
			if got[i].Verdict == reconcile.Unreadable {
				unreadable.add(got[i], e.Offset)
				continue // unsettled: its key was not resolved again
			}
			if got[i].Verdict == reconcile.Expired && e.Letter.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT {
				expired.add(got[i], e.Offset)
				continue // unsettled: nothing covers its intents
			}
			res = append(res, redriven(e.Offset, got[i].Logged, now()))
		}
		if err := q.Settle(ctx, res); err != nil {
			return err
		}
		out.Add(res, limit)
		return nil
	})
	if err != nil {
		return out, err
	}
	if len(gaps) > 0 {
		var parts []int32
		seen := map[int32]bool{}
		for _, e := range gaps {
			if p := e.Letter.Partition; !seen[p] && p < t.Partitions {
				seen[p] = true
				parts = append(parts, p)
			}
		}
		rep := reconcile.Report{}
		if len(parts) > 0 {
			if rep, err = reconcile.Run(ctx, o, t, parts); err != nil && !errors.Is(err, reconcile.ErrUnreadable) {
				return out, err
			}
		}
		out.Gap = &rep
		confirmed, _ := confirmedGaps(gaps, rep)
		res, err2 := q.settleGaps(ctx, confirmed, now())
		if err2 != nil {
			return out, err2
		}
		out.Add(res, limit)
		if err != nil {
			errs = append(errs, err) // the GAP letters of its keys' partitions stay unsettled
		}
		if expiredOpen := expiredGaps(gaps, rep); len(expiredOpen) > 0 {
			errs = append(errs, q.expiredGapError(expiredOpen, rep))
		}
	}
	if err := q.firstResolutions(ctx, out.Resolutions); err != nil {
		return out, err
	}
	out.Add(settled, limit)
	if expired.n > 0 {
		errs = append(errs, q.expiredError(expired))
	}
	if unreadable.n > 0 {
		errs = append(errs, q.unreadableError(unreadable))
	}
	return out, errors.Join(errs...)
}

// firstResolutions replaces each resolution of res, appended by this
// request, with the one that settled its letter: another request (a drop,
// another redrive) that appended its own after this one read the letter
// unsettled, and before this one's, settled it.
func (q *Queue) firstResolutions(ctx context.Context, res []*wailv1.DeadLetterResolution) error {
	if len(res) == 0 {
		return nil
	}
	offsets := make([]int64, len(res))
	for i, r := range res {
		offsets[i] = r.Offset
	}
	o, err := q.outcomes(ctx, offsets)
	if err != nil {
		return err
	}
	for i, r := range res {
		if first := o.settled[r.Offset]; first != nil {
			res[i] = first
		}
	}
	return nil
}

// unreadableError is the error of a redrive that left letters unsettled
// because their keys could not be read.
func (q *Queue) unreadableError(u unsettledLetters) error {
	return fmt.Errorf("%w: %d letters were not redriven: %s: the store failed to read their keys (the first: %v); "+
		"retry the redrive once the store reads them (a READ letter's row may fail to read for good), or drop the letters (`%s`%s); the other letters were redriven",
		ErrUnreadable, u.n, letterNames(u), u.keys[0].Err, q.command("drop", u.offsets...), u.rest(q))
}

// rest says where the letters not named are, when some are not.
func (u unsettledLetters) rest(q *Queue) string {
	if u.n <= len(u.offsets) {
		return ""
	}
	return fmt.Sprintf(", for the first %d; `%s` lists the others", len(u.offsets), q.command("ls"))
}

// letterNames names the first letters of u with their keys.
func letterNames(u unsettledLetters) string {
	const shown = 10
	var names []string
	for i, k := range u.keys[:min(len(u.keys), shown)] {
		name := fmt.Sprintf("%d (key %q, stored version %d)", u.offsets[i], k.Key, k.Stored)
		if k.Err != nil {
			name = fmt.Sprintf("%d (key %q)", u.offsets[i], k.Key)
		}
		names = append(names, name)
	}
	if u.n > shown {
		names = append(names, fmt.Sprintf("and %d more", u.n-shown))
	}
	return strings.Join(names, ", ")
}

// expiredError is the error of a redrive that left letters unsettled
// because their keys were expired.
func (q *Queue) expiredError(u unsettledLetters) error {
	return fmt.Errorf("%w: %d letters were not redriven: %s: their keys have no event left on the bus and the stored versions are older than its retained events, so their events may have been published and removed (log.event_retention, compaction); publishing them again could repeat a version. "+
		"Write each key again (its new version is published), then drop the letters (`%s`%s); the other letters were redriven",
		ErrExpired, u.n, letterNames(u), q.command("drop", u.offsets...), u.rest(q))
}

// expiredGapError is the error of a redrive that left GAP letters open
// because their partitions have expired keys.
func (q *Queue) expiredGapError(open []int64, rep reconcile.Report) error {
	return fmt.Errorf("%w: %d GAP letters were not settled (%s): %s", ErrExpired, len(open), joinOffsets(open), expiredKeysAdvice(rep, q.command("drop", open...)))
}

// expiredKeysAdvice names the expired keys of rep and says what to do
// about the GAP letters they hold open (drop: the command that drops them).
func expiredKeysAdvice(rep reconcile.Report, drop string) string {
	const shown = 10
	var names []string
	for _, k := range rep.ExpiredKeys[:min(len(rep.ExpiredKeys), shown)] {
		names = append(names, fmt.Sprintf("%q (partition %d, stored version %d)", k.Key, k.Partition, k.Stored))
	}
	if more := rep.Expired - int64(len(names)); more > 0 {
		names = append(names, fmt.Sprintf("and %d more", more))
	}
	return fmt.Sprintf("%d keys of their partitions are expired: %s: no event of theirs is left on the bus and their stored versions are older than its retained events, "+
		"so one of the lost intents may be theirs with no event, or their events were published and removed (log.event_retention, compaction); publishing them again could repeat a version. "+
		"Write each key again (its new version is published) and reconcile again, or, once you know the consumers have their state, drop the letters (`%s`)",
		rep.Expired, strings.Join(names, ", "), drop)
}

func joinOffsets(offsets []int64) string {
	s := make([]string, len(offsets))
	for i, o := range offsets {
		s[i] = strconv.FormatInt(o, 10)
	}
	return strings.Join(s, ", ")
}

func (q *Queue) settleGaps(ctx context.Context, gaps []*wailv1.DeadLetterEntry, at time.Time) ([]*wailv1.DeadLetterResolution, error) {
	res := make([]*wailv1.DeadLetterResolution, len(gaps))
	for i, e := range gaps {
		res[i] = redriven(e.Offset, 0, at)
	}
	return res, q.Settle(ctx, res)
}

// Reconciled is what a table reconcile did.
type Reconciled struct {
	Report reconcile.Report
	// Settled are the resolutions of the GAP letters it settled.
	Settled []*wailv1.DeadLetterResolution
	// Open are the offsets of the GAP letters it left open because their
	// partitions have expired keys (Report.ExpiredKeys), or keys the store
	// failed to read (the error says so).
	Open []int64
}

// Reconcile reconciles the whole table (reconcile.Run) and then settles
// (REDRIVEN) the GAP letters that were unsettled when it started and whose
// partitions' keys are all confirmed: their lost intents were logged
// before they were written, so the reconcile compared those intents' keys
// with the bus. A key left expired (no event left on the bus, a stored
// version older than its retained events) or that the store failed to
// read may be one of the lost intents' with no event: the GAP letter of
// its partition stays open (Reconciled.Open). A dry run settles nothing.
// A key the store failed to read makes the error reconcile.ErrUnreadable
// (the other keys were reconciled).
func (q *Queue) Reconcile(ctx context.Context, o reconcile.Options, t reconcile.Table) (Reconciled, error) {
	var gaps []*wailv1.DeadLetterEntry
	_, err := q.each(ctx, Selection{All: true}, func(batch []*wailv1.DeadLetterEntry) error {
		for _, e := range batch {
			if e.Letter.Kind == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
				gaps = append(gaps, e)
			}
		}
		return nil
	})
	if err != nil {
		return Reconciled{}, err
	}
	var out Reconciled
	out.Report, err = reconcile.Run(ctx, o, t, nil)
	if (err != nil && !errors.Is(err, reconcile.ErrUnreadable)) || o.DryRun || len(gaps) == 0 {
		return out, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	confirmed, open := confirmedGaps(gaps, out.Report)
	out.Open = open
	res, err2 := q.settleGaps(ctx, confirmed, now())
	out.Settled = res
	if err2 != nil {
		return out, err2
	}
	return out, err
}

// confirmedGaps splits gaps into the GAP letters whose partitions a
// reconcile (rep) confirmed every key of, and the offsets of the others: a
// key it could not read, or left expired, may be one of the lost intents'
// with no event.
func confirmedGaps(gaps []*wailv1.DeadLetterEntry, rep reconcile.Report) (confirmed []*wailv1.DeadLetterEntry, open []int64) {
	for _, e := range gaps {
		if p := e.Letter.Partition; rep.UnreadableIn[p] || rep.ExpiredIn[p] {
			open = append(open, e.Offset)
			continue
		}
		confirmed = append(confirmed, e)
	}
	return confirmed, open
}

// expiredGaps returns the offsets of the GAP letters of gaps whose
// partitions have expired keys in rep.
func expiredGaps(gaps []*wailv1.DeadLetterEntry, rep reconcile.Report) []int64 {
	var out []int64
	for _, e := range gaps {
		if rep.ExpiredIn[e.Letter.Partition] {
			out = append(out, e.Offset)
		}
	}
	return out
}

func redriven(offset int64, version uint64, at time.Time) *wailv1.DeadLetterResolution {
	return &wailv1.DeadLetterResolution{
		Offset: offset, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN,
		AtUs: at.UnixMicro(), RedriveVersion: version,
	}
}
