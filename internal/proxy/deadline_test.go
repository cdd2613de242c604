package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
)

// TestWriteDeadlines: the append must end by half the visibility window
// after it began, the store write by three quarters: the last quarter is
// the slack for what the database's own bound cannot count, so that the
// write is over before the resolver can give up on its intent.
func TestWriteDeadlines(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	w := &world{}
	p := newWindowProxy(t, w, window)
	start := time.Now()
	r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
	end := time.Now()
	if r.Err != nil || !r.Stored {
		t.Fatalf("result %+v", r)
	}
	within := func(what string, got time.Time, share time.Duration) {
		t.Helper()
		if got.Before(start.Add(share)) || got.After(end.Add(share)) {
			t.Errorf("%s deadline %s after the write began, want %s", what, got.Sub(start), share)
		}
	}
	within("append", w.AppendDeadline, window/2)
	within("store", w.ApplyDeadline, window*3/4)

	// A client deadline shorter than that is kept.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	client, _ := ctx.Deadline()
	if r := p.Write(ctx, []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	if !w.AppendDeadline.Equal(client) || !w.ApplyDeadline.Equal(client) {
		t.Errorf("deadlines %v and %v, want the client's %v", w.AppendDeadline, w.ApplyDeadline, client)
	}
}

// TestSlowAppend: an intent log that does not answer (a broker restarting)
// is cut off at half the visibility window. A transactional table then
// refuses the write and leaves the store alone; an independent table
// writes the store and answers intent_logged=false: its promise is that
// the write goes on without the log.
func TestSlowAppend(t *testing.T) {
	t.Parallel()
	const window = time.Second
	tests := []struct {
		table   string
		wantErr bool
		stored  bool
		calls   string
	}{
		{"tx", true, false, "append-cut-off"},
		{"ind", false, true, "append-cut-off,apply"},
	}
	for _, tc := range tests {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			w := &world{LogBlock: true}
			p := newWindowProxy(t, w, window)
			start := time.Now()
			r := p.Write(context.Background(), []Mutation{{Table: tc.table, Key: []byte("k"), Value: []byte("v")}})[0]
			took := time.Since(start)
			if (r.Err != nil) != tc.wantErr || r.Stored != tc.stored || r.IntentLogged {
				t.Fatalf("result %+v, want error: %v, stored: %v, intent not logged", r, tc.wantErr, tc.stored)
			}
			if tc.wantErr && (!errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "within half the visibility window (500ms), nothing was written")) {
				t.Fatalf("err = %v", r.Err)
			}
			if got := strings.Join(w.Calls, ","); got != tc.calls {
				t.Fatalf("calls %s, want %s", got, tc.calls)
			}
			// The deadlines are checked, not the time taken (a loaded machine
			// may answer late); slack covers the scheduling between the
			// test's clock read and the proxy's.
			const slack = window / 5
			if took < window/2 {
				t.Errorf("answered after %s, before half the window (%s)", took, window/2)
			}
			if d := w.AppendDeadline.Sub(start); d < window/2 || d > window/2+slack {
				t.Errorf("append deadline %s after the write began, want half the window (%s)", d, window/2)
			}
			if d := w.ApplyDeadline.Sub(start); tc.stored && (d < window*3/4 || d > window*3/4+slack) {
				t.Errorf("store deadline %s after the write began, want %s: counted from when the append began", d, window*3/4)
			}
		})
	}
}

// TestSlowAppendWritesNothing: a log that overran the deadline it was given
// and then took the intent leaves a transactional write less than its
// share of the window for the store: the proxy writes nothing, answers
// Unavailable and logs an ABORT. An independent table writes the store
// with the time that is left.
func TestSlowAppendWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		table, calls string
		wantErr      bool
	}{
		{"tx", "append:UPSERT,append:ABORT", true},
		{"ind", "append:UPSERT,apply", false},
	} {
		w := &world{LogDelay: 30 * time.Millisecond}
		p := newWindowProxy(t, w, 40*time.Millisecond)
		r := p.Write(context.Background(), []Mutation{{Table: tc.table, Key: []byte("k"), Value: []byte("v")}})[0]
		if tc.wantErr && (!errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "over half the visibility window (40ms)") || r.Stored || !r.IntentLogged) {
			t.Fatalf("%s: result %+v", tc.table, r)
		}
		if !tc.wantErr && (r.Err != nil || !r.Stored || !r.IntentLogged) {
			t.Fatalf("%s: result %+v", tc.table, r)
		}
		if got := strings.Join(w.Calls, ","); got != tc.calls {
			t.Fatalf("%s: calls %s, want %s", tc.table, got, tc.calls)
		}
	}
}

// TestAfterAppend pins the decision after the append, at its boundaries:
// W/2 exactly is within the append's deadline (a transactional write goes
// on) and counts as slow; a nanosecond more is late; an independent table
// writes the store whatever the append did; a failure mode that is neither
// (never stored by the catalog) is treated as transactional.
func TestAfterAppend(t *testing.T) {
	t.Parallel()
	const w = 10 * time.Second
	tx, ind := catalog.Transactional, catalog.Independent
	tests := []struct {
		mode   catalog.FailureMode
		logged bool
		took   time.Duration
		want   step
		slow   bool
	}{
		{tx, true, 0, writeStore, false},
		{tx, true, w/2 - 1, writeStore, false},
		{tx, true, w / 2, writeStore, true},
		{tx, true, w/2 + 1, refuseLate, true},
		{tx, true, 2 * w, refuseLate, true},
		{tx, false, 0, refuse, false},
		{tx, false, w / 2, refuse, true},
		{tx, false, w/2 + 1, refuse, true},
		{ind, true, 0, writeStore, false},
		{ind, true, w/2 + 1, writeStore, true},
		{ind, false, 0, writeStore, false},
		{ind, false, w / 2, writeStore, true},
		{0, false, 0, refuse, false},
		{3, true, w/2 + 1, refuseLate, true},
	}
	for _, tc := range tests {
		got, slow := afterAppend(tc.mode, tc.logged, tc.took, w)
		if got != tc.want || slow != tc.slow {
			t.Errorf("%v, logged %v, took %s: %d, slow %v; want %d, slow %v", tc.mode, tc.logged, tc.took, got, slow, tc.want, tc.slow)
		}
	}
}
