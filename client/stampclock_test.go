package client

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestServerClock: no bound before a server_time was answered; then the
// bound is the last answer's server_time plus the time since it arrived
// (less 200 ppm of it), plus the window. The last answer counts, whether
// it reads earlier or later than the one before (a slow or fast one-way
// trip): an old answer's estimate carries the clocks' drift for longer.
func TestServerClock(t *testing.T) {
	local := time.Now() // monotonic
	var c serverClock
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound before any answer = %d, want 0", b)
	}
	c.observe(0, local) // a server that does not tell its clock
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound after an answer without server_time = %d, want 0", b)
	}
	const server = uint64(1000 * time.Hour)
	for _, step := range []struct {
		name   string
		server uint64        // the answer's server_time
		at     time.Duration // when it arrived, after local
		sent   time.Duration // when the batch is sent, after the answer
		want   uint64        // its stamp_before with a 5 s window
	}{
		{"first answer", server, 50 * time.Millisecond, time.Second, server + uint64(6*time.Second-200*time.Microsecond)},
		{"a later one", server + uint64(100*time.Millisecond), 110 * time.Millisecond, 0, server + uint64(5100*time.Millisecond)},
		{"one that took longer to come", server + uint64(100*time.Millisecond), 1200 * time.Millisecond, 5000 * time.Second,
			server + uint64(100*time.Millisecond+5000*time.Second-time.Second+5*time.Second)},
		{"sent before the answer arrived (cannot be: counts as at it)", server + uint64(2*time.Second), 1300 * time.Millisecond, -time.Second,
			server + uint64(7*time.Second)},
	} {
		c.observe(step.server, local.Add(step.at))
		if got := c.stampBefore(local.Add(step.at+step.sent), 5*time.Second); got != step.want {
			t.Errorf("%s: bound %d, want %d (%s off)", step.name, got, step.want, time.Duration(int64(got-step.want)))
		}
	}
	if b := c.stampBefore(local.Add(2*time.Second), 0); b != 0 {
		t.Errorf("a bound with no window: %d, want 0", b)
	}
}

// TestStampWindow: 5 s of the 6 s fence (1 s left for the servers'
// clocks); twice the slowest recent send-to-answer time when that is
// more, forgetting 1/8 of it at each answer, up to 12 times the base; a
// fence too short for a bound (tests) gives none.
func TestStampWindow(t *testing.T) {
	for _, tc := range []struct{ fence, want time.Duration }{
		{FenceAfterBreak, 5 * time.Second},
		{600 * time.Millisecond, 500 * time.Millisecond},
		{120 * time.Millisecond, 100 * time.Millisecond},
		{119 * time.Millisecond, 0},
		{time.Millisecond, 0},
	} {
		w := newStampWindow(tc.fence)
		if got := w.get(); got != tc.want {
			t.Errorf("window of a %s fence = %s, want %s", tc.fence, got, tc.want)
		}
		w.answered(time.Hour)
		if got := w.get(); tc.want == 0 && got != 0 {
			t.Errorf("window of a %s fence after a slow answer = %s, want none", tc.fence, got)
		}
	}
	w := newStampWindow(FenceAfterBreak)
	for _, step := range []struct {
		took time.Duration // the answer's send-to-answer time
		want time.Duration
	}{
		{10 * time.Millisecond, 5 * time.Second},
		{2500 * time.Millisecond, 5 * time.Second},
		{4 * time.Second, 8 * time.Second},
		{time.Second, 7 * time.Second},      // 3.5 s left of the 4
		{0, 6125 * time.Millisecond},        // 3.0625 s
		{time.Hour, 60 * time.Second},       // at most 12 × 5 s
		{3 * time.Second, 60 * time.Second}, // 52.5 min left
	} {
		w.answered(step.took)
		if got := w.get(); got != step.want {
			t.Errorf("after an answer in %s: window %s, want %s", step.took, got, step.want)
		}
	}
	// An answer stamped in time forgets 1/8 of the slowest time too.
	s := newStampWindow(FenceAfterBreak)
	s.answered(4 * time.Second)
	if s.settled(); s.get() != 7*time.Second {
		t.Errorf("after an answer in 4 s, then one stamped in time: window %s, want 7 s", s.get())
	}
	for range 200 {
		w.answered(time.Millisecond)
	}
	if got := w.get(); got != 5*time.Second {
		t.Errorf("after many fast answers: window %s, want the base 5 s back", got)
	}
}

// TestFenceOf: a lost batch that carried a stamp_before fences its keys
// until that bound (its send plus its window, in local time) plus the
// second the window leaves of the fence, for the proxies' clocks and the
// server's check-to-stamp time, wherever the break came; one without a
// bound, FenceAfterBreak after the break.
func TestFenceOf(t *testing.T) {
	now := time.Now()
	l := &loop{p: &Producer{fence: FenceAfterBreak}, window: newStampWindow(FenceAfterBreak)}
	for _, tc := range []struct {
		name  string
		until time.Time
		want  time.Time
	}{
		{"no bound", time.Time{}, now.Add(FenceAfterBreak)},
		{"bound ahead", now.Add(4 * time.Second), now.Add(5 * time.Second)},
		{"bound of a grown window", now.Add(40 * time.Second), now.Add(41 * time.Second)},
		{"bound passed before the break was found", now.Add(-3 * time.Second), now.Add(-2 * time.Second)},
	} {
		f := &flight{bounded: !tc.until.IsZero()}
		if !tc.until.IsZero() {
			f.until.Store(&tc.until)
		}
		if got := l.fenceOf(f, now); !got.Equal(tc.want) {
			t.Errorf("%s: fenced until %s after the break, want %s", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}

// TestFenceOfUnsent: a bounded batch its stream's sender never took (the
// stream was given up first) was never sent: no fence.
func TestFenceOfUnsent(t *testing.T) {
	now := time.Now()
	l := &loop{p: &Producer{fence: FenceAfterBreak}, window: newStampWindow(FenceAfterBreak)}
	if got := l.fenceOf(&flight{bounded: true}, now); !got.Equal(now) {
		t.Errorf("fenced until %s after the break, want none", got.Sub(now))
	}
}

// TestRefusedUnstamped: only an answer refusing a write unavailable and
// unstamped grows the stamp window; a written batch, however slow, or a
// refusal after the stamp, does not.
func TestRefusedUnstamped(t *testing.T) {
	unavailable := &wailv1.Error{Code: connect.CodeUnavailable.String()}
	for _, tc := range []struct {
		name string
		resp *wailv1.WriteStreamResponse
		want bool
	}{
		{"written", &wailv1.WriteStreamResponse{Results: []*wailv1.WriteResult{{Version: 7}}}, false},
		{"probe", &wailv1.WriteStreamResponse{}, false},
		{"batch refused unavailable", &wailv1.WriteStreamResponse{Error: unavailable}, true},
		{"batch refused otherwise", &wailv1.WriteStreamResponse{Error: &wailv1.Error{Code: connect.CodeResourceExhausted.String()}}, false},
		{"write refused before its stamp", &wailv1.WriteStreamResponse{Results: []*wailv1.WriteResult{{Version: 7}, {Error: unavailable}}}, true},
		{"write refused after its stamp", &wailv1.WriteStreamResponse{Results: []*wailv1.WriteResult{{Version: 7, Error: unavailable}}}, false},
	} {
		if got := refusedUnstamped(tc.resp); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
