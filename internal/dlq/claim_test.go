package dlq

import (
	"errors"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// rec is a record naming the letter at offset 0: a resolution (act, claim
// id) or a claim (id, epoch, released).
type rec struct {
	act      wailv1.DeadLetterAction // a resolution; 0: a claim
	id       string
	epoch    uint64
	released bool
}

var (
	dropped = wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED
	redrove = wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN
)

// TestFoldClaims: the records naming a letter decide it in topic order
// (fold.go): a claim holds it, a resolution without the claim's id is
// void meanwhile, a claim of a higher or equal epoch takes over, a lower
// one is void, a release frees it, the first resolution that settles it
// counts.
func TestFoldClaims(t *testing.T) {
	cases := []struct {
		name    string
		recs    []rec
		settled wailv1.DeadLetterAction // 0: not settled
		by      int                     // the index of the settling resolution
		held    string                  // the claim id holding it
	}{
		{"drop", []rec{{act: dropped}}, dropped, 0, ""},
		{"first resolution counts", []rec{{act: redrove}, {act: dropped}}, redrove, 0, ""},
		{"claim holds", []rec{{id: "a", epoch: 1}}, 0, 0, "a"},
		{"drop during a claim is void", []rec{{id: "a", epoch: 1}, {act: dropped}}, 0, 0, "a"},
		{"the claim settles", []rec{{id: "a", epoch: 1}, {act: dropped}, {act: redrove, id: "a"}}, redrove, 2, ""},
		{"another claim's resolution is void", []rec{{id: "a", epoch: 1}, {act: redrove, id: "b"}}, 0, 0, "a"},
		{"a claim after a drop changes nothing", []rec{{act: dropped}, {id: "a", epoch: 1}, {act: redrove, id: "a"}}, dropped, 0, ""},
		{"release frees", []rec{{id: "a", epoch: 1}, {id: "a", epoch: 1, released: true}, {act: dropped}}, dropped, 2, ""},
		{"another's release does not", []rec{{id: "a", epoch: 1}, {id: "b", epoch: 1, released: true}, {act: dropped}}, 0, 0, "a"},
		{"higher epoch takes over", []rec{{id: "a", epoch: 1}, {id: "b", epoch: 2}, {act: redrove, id: "a"}}, 0, 0, "b"},
		{"equal epoch takes over", []rec{{id: "a", epoch: 2}, {id: "b", epoch: 2}}, 0, 0, "b"},
		{"lower epoch is void", []rec{{id: "b", epoch: 2}, {id: "a", epoch: 1}, {act: redrove, id: "a"}}, 0, 0, "b"},
		{"the new holder settles", []rec{{id: "a", epoch: 1}, {id: "b", epoch: 2}, {act: redrove, id: "b"}}, redrove, 2, ""},
		{"a resolution under no claim settles", []rec{{id: "a", epoch: 1}, {id: "a", released: true, epoch: 1}, {act: redrove, id: "a"}}, redrove, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := openLog(t)
			q := NewSinkQueue(log, "t", "s", "wail.sink.t.s.dlq", nil)
			ctx := t.Context()
			if err := log.CreateTopic(ctx, q.Topic(), 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			l, err := LetterRecord(goldenSink)
			if err != nil {
				t.Fatal(err)
			}
			recs := []*intentlog.Record{l}
			var resAt []int64 // at_us of each record: which resolution settled it
			for i, r := range c.recs {
				var x *intentlog.Record
				if r.act != 0 {
					x, err = ResolutionRecord(&wailv1.DeadLetterResolution{Offset: 0, Action: r.act, ClaimId: r.id, AtUs: int64(i + 1)})
				} else {
					x, err = ClaimRecord(&wailv1.DeadLetterClaim{Offset: 0, Id: r.id, Epoch: r.epoch, Released: r.released, AtUs: int64(i + 1)})
				}
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, x)
				resAt = append(resAt, int64(i+1))
			}
			if err := log.Append(ctx, q.Topic(), recs); err != nil {
				t.Fatal(err)
			}
			o, err := q.outcomes(ctx, []int64{0})
			if err != nil {
				t.Fatal(err)
			}
			res, h := o.settled[0], o.held[0]
			switch {
			case res.GetAction() != c.settled:
				t.Fatalf("settled %v, want %v", res, c.settled)
			case c.settled != 0 && res.AtUs != resAt[c.by]:
				t.Fatalf("settled by record %d, want %d", res.AtUs-1, c.by)
			case h.GetId() != c.held:
				t.Fatalf("held by %v, want claim %q", h, c.held)
			}
			// List and Get agree.
			e, err := q.Get(ctx, 0)
			if err != nil || e.Resolution.GetAction() != c.settled || (c.settled != 0 && e.Resolution.AtUs != resAt[c.by]) {
				t.Fatalf("Get: %v, %v", e, err)
			}
			// Get shows the claim holding the letter: none once it is settled
			// (a claim before it settled, or one after, which changes nothing).
			if e.Claim.GetId() != c.held {
				t.Fatalf("Get: claim %v, want %q (settled %v)", e.Claim, c.held, c.settled)
			}
			ls, _, err := q.List(ctx, ListOptions{After: -1})
			if err != nil || (len(ls) == 0) != (c.settled != 0) {
				t.Fatalf("List: %v, %v (settled %v)", ls, err, c.settled)
			}
		})
	}
}

// TestDropClaimed: a drop of a letter that a claim holds fails with
// ErrRaced naming the holder and what to run, and drops the others; once
// the claim is released the letter can be dropped; Claim reports letters
// settled or held by another claim.
func TestDropClaimed(t *testing.T) {
	log := openLog(t)
	q := NewSinkQueue(log, "t", "s", "wail.sink.t.s.dlq", nil)
	ctx := t.Context()
	if err := log.CreateTopic(ctx, q.Topic(), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for range 3 {
		l, err := LetterRecord(goldenSink)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, l)
	}
	if err := log.Append(ctx, q.Topic(), recs); err != nil {
		t.Fatal(err)
	}
	a := Claim{ID: "a", Epoch: 3, Holder: "host h pid 1"}
	got, err := q.Claim(ctx, a, []int64{1}, time.Now())
	if err != nil || len(got.Won) != 1 || got.Won[0] != 1 {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	// ls and show say who holds it.
	if e, err := q.Get(ctx, 1); err != nil || e.Claim.GetHolder() != "host h pid 1" || e.Resolution != nil {
		t.Fatalf("Get of the claimed letter: %v, %v", e, err)
	}
	if ls, _, err := q.List(ctx, ListOptions{After: -1}); err != nil || len(ls) != 3 || ls[0].Claim != nil || ls[1].Claim.GetId() != "a" {
		t.Fatalf("List: %v, %v; want the claim on offset 1 only", ls, err)
	}
	_, err = q.Drop(ctx, Selection{All: true}, time.Now())
	if !errors.Is(err, ErrRaced) || !strings.Contains(err.Error(), "[1]") || !strings.Contains(err.Error(), "host h pid 1") ||
		!strings.Contains(err.Error(), "wail sink dlq show t s 1") || !strings.Contains(err.Error(), "the 2 others were dropped") {
		t.Fatalf("drop of a claimed letter: %v", err)
	}
	// A lower epoch's claim gets nothing; it sees the letters as they are.
	got, err = q.Claim(ctx, Claim{ID: "b", Epoch: 2}, []int64{0, 1}, time.Now())
	if err != nil || len(got.Won) != 0 || got.Settled[0].GetAction() != dropped || got.Held[1].GetId() != "a" {
		t.Fatalf("claim at a lower epoch: %+v, %v", got, err)
	}
	if err := q.Release(ctx, a, []int64{1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := resolutions(q.Drop(ctx, Selection{Offsets: []int64{1}}, time.Now()))
	if err != nil || len(res) != 1 || res[0].Action != dropped {
		t.Fatalf("drop once released: %v, %v", res, err)
	}
}
