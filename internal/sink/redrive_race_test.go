package sink

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// A drop of a sink's dead letter racing a redrive of it (another process:
// another queue on the same log, without the redriving runner's partition
// lock). Whatever the interleaving, the letter ends in one outcome, the
// endpoint got it at most once (once when that outcome is REDRIVEN), and
// the request that lost says so (dlq.ErrRaced).

// oneLetter makes a sink whose endpoint refused key poison's event, waits
// for its letter and for the runner to deliver the partition, and makes
// the endpoint take everything from then on.
func oneLetter(t *testing.T, name string) (*refusingSink, *wailv1.DeadLetterEntry) {
	t.Helper()
	s := newRefusingSink(t, 1, name, func(key string) bool { return key == "poison" })
	s.f.publish(event("poison", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letter", time.Minute, func() bool { ls = letters(t, s.m, name); return len(ls) == 1 })
	s.failing.Store(false)
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		r, err := s.m.runner(&wailv1.Sink{Table: testTable, Name: name})
		return err == nil && r.owns(0)
	})
	return s, ls[0]
}

// outcome checks the letter's one resolution and how often the endpoint
// took poison@1.
func outcome(t *testing.T, s *refusingSink, name string, l *wailv1.DeadLetterEntry, want wailv1.DeadLetterAction) {
	t.Helper()
	q, err := s.m.DeadLetters(context.Background(), testTable, name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Get(context.Background(), l.Offset)
	if err != nil {
		t.Fatal(err)
	}
	if got.Resolution.GetAction() != want {
		t.Errorf("the letter is settled %v, want %v", got.Resolution, want)
	}
	sent := 0
	if want == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		sent = 1
	}
	if n := received(s.ep, "poison", 1); n != sent {
		t.Errorf("the endpoint took poison@1 %d times, want %d (the letter is %v)", n, sent, want)
	}
	if ls := letters(t, s.m, name); len(ls) != 0 {
		t.Errorf("unsettled letters left: %v", ls)
	}
}

// lost checks a loser's error: dlq.ErrRaced, naming the letter and what to
// run.
func lost(t *testing.T, what string, err error, l *wailv1.DeadLetterEntry, hint string) {
	t.Helper()
	t.Logf("%s: %v", what, err)
	if !errors.Is(err, dlq.ErrRaced) || !strings.Contains(err.Error(), "["+strconv.FormatInt(l.Offset, 10)+"]") || !strings.Contains(err.Error(), hint) {
		t.Errorf("%s: %v; want dlq.ErrRaced naming offset %d and %q", what, err, l.Offset, hint)
	}
}

// TestSinkDropWhileRedriveSends: a drop that lands while a redrive of the
// letter is sending it (past every check the redrive makes) loses: the
// letter is REDRIVEN, sent once, and the drop fails with ErrRaced.
func TestSinkDropWhileRedriveSends(t *testing.T) {
	s, l := oneLetter(t, "dropsend")
	ctx := context.Background()
	var dropErr error
	dropped := false
	beforeResend = func() {
		dropped = true
		_, dropErr = s.m.queue(testTable, "dropsend").Drop(ctx, dlq.Selection{Offsets: []int64{l.Offset}}, time.Now())
	}
	defer func() { beforeResend = func() {} }()
	res, err := resolutions(s.m.Redrive(ctx, testTable, "dropsend", dlq.Selection{All: true}))
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive: %v, %v; want the letter REDRIVEN", res, err)
	}
	if !dropped {
		t.Fatal("the drop did not run while the redrive was sending")
	}
	lost(t, "drop while a redrive sends", dropErr, l, "being redriven by host")
	outcome(t, s, "dropsend", l, wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN)
}

// holdLog holds the Append of a DROPPED resolution until release: the
// drop read the letter unsettled and is about to settle it.
type holdLog struct {
	intentlog.Log
	held, release chan struct{}
}

func (h *holdLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	for _, r := range recs {
		if m, err := dlq.Decode(r.Value); err == nil && m.GetResolution().GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
			close(h.held)
			<-h.release
			break
		}
	}
	return h.Log.Append(ctx, topic, recs)
}

// TestSinkDropAfterRedriveDone: a drop that read the letter unsettled, then
// settles it after a redrive delivered it, loses: the letter stays
// REDRIVEN (sent once) and the drop fails with ErrRaced instead of saying
// "dropped".
func TestSinkDropAfterRedriveDone(t *testing.T) {
	s, l := oneLetter(t, "dropdone")
	ctx := context.Background()
	h := &holdLog{Log: s.f.log, held: make(chan struct{}), release: make(chan struct{})}
	q := dlq.NewSinkQueue(h, testTable, "dropdone", DeadLetterTopic(testTable, "dropdone"), legacyLetter("dropdone"))
	dropErr := make(chan error, 1)
	go func() {
		_, err := q.Drop(ctx, dlq.Selection{Offsets: []int64{l.Offset}}, time.Now())
		dropErr <- err
	}()
	<-h.held
	res, err := resolutions(s.m.Redrive(ctx, testTable, "dropdone", dlq.Selection{All: true}))
	close(h.release)
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive: %v, %v; want the letter REDRIVEN", res, err)
	}
	lost(t, "drop after a redrive", <-dropErr, l, "redriven")
	outcome(t, s, "dropdone", l, wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN)
}

// TestSinkRedriveAfterDrop: a redrive that read the letter unsettled, then
// finds it dropped (the drop settled it while the redrive waited for the
// partition), does not send it and fails with ErrRaced.
func TestSinkRedriveAfterDrop(t *testing.T) {
	s, l := oneLetter(t, "redrivedrop")
	ctx := context.Background()
	var dropRes []*wailv1.DeadLetterResolution
	var dropErr error
	beforeLock = func() {
		dropRes, dropErr = resolutions(s.m.queue(testTable, "redrivedrop").Drop(ctx, dlq.Selection{Offsets: []int64{l.Offset}}, time.Now()))
	}
	defer func() { beforeLock = func() {} }()
	_, err := s.m.Redrive(ctx, testTable, "redrivedrop", dlq.Selection{All: true})
	if dropErr != nil || len(dropRes) != 1 || dropRes[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
		t.Fatalf("drop: %v, %v; want the letter DROPPED", dropRes, dropErr)
	}
	lost(t, "redrive after a drop", err, l, "dropped")
	outcome(t, s, "redrivedrop", l, wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED)
}

// TestSinkRedriveClaims: a claim left on a letter by a redrive that died
// (here at the runner's own epoch) is taken over: the letter is sent once
// and settled; a claim at a higher epoch (a newer owner of the partition,
// on another process of the shared group, redriving it) is not: the
// redrive sends nothing of it and fails with ErrRaced naming the holder,
// and the letter stays unsettled. (An unshared group has no other
// process: a claim at an epoch its process never gave is a dead
// process's, taken over: TestSinkRedriveTakesOverAClaimOfBeforeARestart/clock_ahead.)
func TestSinkRedriveClaims(t *testing.T) {
	s := newRefusingSinkWith(t, 1, "claims", func(key string) bool { return strings.HasPrefix(key, "poison") }, true)
	m, ctx := s.m, context.Background()
	s.f.publish(event("poisonA", 1), event("poisonB", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letters", time.Minute, func() bool { ls = letters(t, m, "claims"); return len(ls) == 2 })
	s.failing.Store(false)
	var epoch uint64
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		r, err := m.runner(&wailv1.Sink{Table: testTable, Name: "claims"})
		if err != nil {
			return false
		}
		e, ok := r.epoch(0)
		epoch = e
		return ok
	})
	q := m.queue(testTable, "claims")
	for _, c := range []struct {
		off   int64
		claim dlq.Claim
	}{
		{ls[0].Offset, dlq.Claim{ID: "died", Epoch: epoch, Holder: "the dead one"}},
		{ls[1].Offset, dlq.Claim{ID: "newer", Epoch: epoch + 1, Holder: "the newer owner"}},
	} {
		if got, err := q.Claim(ctx, c.claim, []int64{c.off}, time.Now()); err != nil || len(got.Won) != 1 {
			t.Fatalf("claim %s: %+v, %v", c.claim.ID, got, err)
		}
	}
	_, err := m.Redrive(ctx, testTable, "claims", dlq.Selection{All: true})
	lost(t, "redrive of a letter a newer owner holds", err, ls[1], "the newer owner")
	if n, k := received(s.ep, "poisonA", 1), received(s.ep, "poisonB", 1); n != 1 || k != 0 {
		t.Fatalf("the endpoint took poisonA %d times and poisonB %d times, want once and never", n, k)
	}
	if ls := letters(t, m, "claims"); len(ls) != 1 || string(ls[0].Letter.Key) != "poisonB" {
		t.Fatalf("unsettled: %v, want poisonB's letter", ls)
	}
}

// TestSinkRedriveLosesThePartition: a redrive whose process loses the
// partition between two sends (its lease ended, another process took it)
// sends nothing more: the letter after is not sent, its claim is released
// (a drop can settle it) and the redrive fails naming the partition.
func TestSinkRedriveLosesThePartition(t *testing.T) {
	s := newRefusingSink(t, 1, "lose", func(key string) bool { return strings.HasPrefix(key, "poison") })
	m, ctx := s.m, context.Background()
	s.f.publish(event("poisonA", 1), event("poisonB", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letters", time.Minute, func() bool { ls = letters(t, m, "lose"); return len(ls) == 2 })
	s.failing.Store(false)
	var r *runner
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		var err error
		r, err = m.runner(&wailv1.Sink{Table: testTable, Name: "lose"})
		return err == nil && r.owns(0)
	})
	sends := 0
	beforeResend = func() {
		if sends++; sends == 1 {
			r.pmu.Lock()
			sess := r.sess
			r.pmu.Unlock()
			r.granted(sess, group.Message{Revoked: []int32{0}})
		}
	}
	defer func() { beforeResend = func() {} }()
	res, err := resolutions(m.Redrive(ctx, testTable, "lose", dlq.Selection{All: true}))
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "partitions [0]") || len(res) != 1 || res[0].Offset != ls[0].Offset {
		t.Fatalf("redrive that lost its partition: %v, %v; want the first letter's resolution and ErrNotRunning naming partition 0", res, err)
	}
	if a, b := received(s.ep, "poisonA", 1), received(s.ep, "poisonB", 1); a != 1 || b != 0 || sends != 1 {
		t.Fatalf("sent %d, the endpoint took poisonA %d and poisonB %d times; want the first sent, the second not", sends, a, b)
	}
	// The first was sent and settled; the second is unsettled and free.
	q := m.queue(testTable, "lose")
	got, err := resolutions(q.Drop(ctx, dlq.Selection{Offsets: []int64{ls[1].Offset}}, time.Now()))
	if err != nil || len(got) != 1 || got[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
		t.Fatalf("drop of the released letter: %v, %v", got, err)
	}
	if e, err := q.Get(ctx, ls[0].Offset); err != nil || e.Resolution.GetAction() != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("the letter sent: %v, %v; want REDRIVEN", e, err)
	}
}
