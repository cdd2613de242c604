package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// dropAtUs is the time of the resolutions of the drop under test.
const dropAtUs = 777

// manyLetters appends n letters of table t and returns their offsets.
func manyLetters(t *testing.T, log intentlog.Log, n int) []int64 {
	t.Helper()
	ls := make([]*wailv1.DeadLetter, n)
	for i := range ls {
		ls[i] = letter(fmt.Sprintf("k%d", i), 0)
	}
	return appendLetters(t, log, ls...)
}

// TestDropAllBounded: `drop --all` answers at most Selection.Limit
// resolutions (the first letters') and counts all of them (Total); every
// letter is dropped all the same, over several pages. Before, it kept
// every offset, folded the whole topic again for all of them and answered
// one resolution per letter: millions of letters passed the client's
// message limit (and the server's memory).
func TestDropAllBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		letters, limit int
		want           int
	}{
		{"under the limit", 5, 10, 5},
		{"at the limit", 5, 5, 5},
		{"over the limit, pages", 2*MaxLimit + 5, 2, 2},
		{"zero: the default, pages", 2*MaxLimit + 5, 0, MaxLimit},
		{"over the maximum: the maximum", MaxLimit + 5, MaxLimit + 1, MaxLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := openLog(t)
			q := NewQueue(log, "t", 0)
			ctx := t.Context()
			offs := manyLetters(t, log, tc.letters)
			got, err := q.Drop(ctx, Selection{All: true, Limit: tc.limit}, time.UnixMicro(dropAtUs))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Resolutions) != tc.want || got.Total != int64(tc.letters) {
				t.Fatalf("%d resolutions, total %d; want %d, total %d", len(got.Resolutions), got.Total, tc.want, tc.letters)
			}
			for i, r := range got.Resolutions {
				if r.Offset != offs[i] || r.Action != dropped {
					t.Fatalf("resolution %d: %v; want the first letters dropped in order (%d)", i, r, offs[i])
				}
			}
			if left, _, _ := q.List(ctx, ListOptions{After: -1}); len(left) != 0 {
				t.Fatalf("unsettled %v", offsetsOf(left))
			}
			// Again: nothing left to drop.
			if again, err := q.Drop(ctx, Selection{All: true, Limit: tc.limit}, time.Now()); err != nil || again.Total != 0 || len(again.Resolutions) != 0 {
				t.Fatalf("drop --all again: %+v, %v", again, err)
			}
		})
	}
}

// raceLog appends, before each append of the drop under test's
// resolutions (page, from 1), what another request appended first (other
// returns it).
type raceLog struct {
	intentlog.Log
	pages int
	other func(page int) []*intentlog.Record
}

func (l *raceLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if topic == Topic("t") && len(recs) > 0 {
		if m, err := Decode(recs[0].Value); err == nil && m.GetResolution().GetAtUs() == dropAtUs {
			l.pages++
			if extra := l.other(l.pages); len(extra) > 0 {
				if err := l.Log.Append(ctx, topic, extra); err != nil {
					return err
				}
			}
		}
	}
	return l.Log.Append(ctx, topic, recs)
}

func resolutionRec(t *testing.T, off int64, a wailv1.DeadLetterAction, atUs int64) *intentlog.Record {
	t.Helper()
	r, err := ResolutionRecord(&wailv1.DeadLetterResolution{Offset: off, Action: a, AtUs: atUs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func claimRec(t *testing.T, off int64) *intentlog.Record {
	t.Helper()
	r, err := ClaimRecord(&wailv1.DeadLetterClaim{Offset: off, Id: "c", Epoch: 1, AtUs: 1, Holder: "host h pid 1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDropRacedPerPage: `drop --all` over several pages checks each page
// against the requests that acted on its letters first: a letter another
// request redrove, or a claim holds, after the drop read it is not dropped
// and is named (ErrRaced), whatever its page; one another drop dropped is
// dropped (its resolution answered); a letter settled before the drop
// read its page is not the drop's; the other letters are dropped.
func TestDropRacedPerPage(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	ctx := t.Context()
	offs := manyLetters(t, log, 2*MaxLimit+10)
	rl := &raceLog{Log: log}
	rl.other = func(page int) []*intentlog.Record {
		switch page {
		case 1:
			return []*intentlog.Record{
				resolutionRec(t, offs[1], redrove, 5), // lost
				resolutionRec(t, offs[2], dropped, 5), // another drop: dropped
				claimRec(t, offs[3]),                  // held: lost
				// A letter of the third page, settled before the drop reads it.
				resolutionRec(t, offs[2*MaxLimit+5], redrove, 5),
			}
		case 2:
			return []*intentlog.Record{resolutionRec(t, offs[MaxLimit+1], redrove, 5), claimRec(t, offs[MaxLimit+500])}
		}
		return nil
	}
	q := NewQueue(rl, "t", 0)
	got, err := q.Drop(ctx, Selection{All: true, Limit: 3}, time.UnixMicro(dropAtUs))
	if !errors.Is(err, ErrRaced) {
		t.Fatalf("err = %v, want ErrRaced", err)
	}
	if rl.pages != 3 {
		t.Fatalf("%d pages appended, want 3", rl.pages)
	}
	for _, want := range []string{
		fmt.Sprintf("dead letters [%d %d %d %d] of table t were not dropped", offs[1], offs[3], offs[MaxLimit+1], offs[MaxLimit+500]),
		fmt.Sprintf("[%d %d] redriven meanwhile", offs[1], offs[MaxLimit+1]),
		fmt.Sprintf("[%d %d] being redriven by host h pid 1", offs[3], offs[MaxLimit+500]),
		fmt.Sprintf("the %d others were dropped", 2*MaxLimit+10-5),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant %q in it", err, want)
		}
	}
	if got.Total != 2*MaxLimit+10-5 || len(got.Resolutions) != 3 {
		t.Fatalf("total %d, %d resolutions; want %d, 3", got.Total, len(got.Resolutions), 2*MaxLimit+10-5)
	}
	for i, want := range []struct {
		off  int64
		atUs int64
	}{{offs[0], dropAtUs}, {offs[2], 5}, {offs[4], dropAtUs}} {
		if r := got.Resolutions[i]; r.Offset != want.off || r.Action != dropped || r.AtUs != want.atUs {
			t.Errorf("resolution %d: %v; want offset %d dropped at %d", i, r, want.off, want.atUs)
		}
	}
	left, _, err := q.List(ctx, ListOptions{After: -1})
	if err != nil || fmt.Sprint(offsetsOf(left)) != fmt.Sprint([]int64{offs[3], offs[MaxLimit+500]}) {
		t.Fatalf("unsettled %v, %v; want the claimed letters", offsetsOf(left), err)
	}
	for _, off := range []int64{offs[1], offs[MaxLimit+1], offs[2*MaxLimit+5]} {
		if e, err := q.Get(ctx, off); err != nil || e.Resolution.GetAction() != redrove {
			t.Errorf("letter %d: %v, %v; want redriven", off, e, err)
		}
	}
}

// TestDropRacedBounded: the letters lost to other requests are counted and
// the first 100 named, not one name per letter of a `drop --all` over
// millions.
func TestDropRacedBounded(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	n := maxNamed + 50
	offs := manyLetters(t, log, n)
	rl := &raceLog{Log: log, other: func(page int) []*intentlog.Record {
		var recs []*intentlog.Record
		for _, off := range offs {
			recs = append(recs, resolutionRec(t, off, redrove, 5))
		}
		return recs
	}}
	got, err := NewQueue(rl, "t", 0).Drop(t.Context(), Selection{All: true}, time.UnixMicro(dropAtUs))
	if !errors.Is(err, ErrRaced) || got.Total != 0 {
		t.Fatalf("total %d, err = %v", got.Total, err)
	}
	want := fmt.Sprint(offs[:maxNamed]) + fmt.Sprintf(" and 50 more (%d in all; `wail dlq ls t --include-settled` lists them)", n)
	if !strings.Contains(err.Error(), "dead letters "+want+" of table t were not dropped") || strings.Contains(err.Error(), "others were") {
		t.Fatalf("err = %v\nwant %q", err, want)
	}
}
