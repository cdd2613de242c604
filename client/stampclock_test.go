package client

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// TestServerClock: no bound before a server_time was answered; then the
// bound is the server's time at the send, as the last answer tells it,
// plus the window: an answer from a clock stepped back counts as much as
// one stepped forward.
func TestServerClock(t *testing.T) {
	local := time.Now() // monotonic
	server := hlc.Epoch.Add(200 * 24 * time.Hour)
	v := func(at time.Time) uint64 { return hlc.At(at) | 7 } // logical and proxy bits set
	var c serverClock
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound before any answer = %d, want 0", b)
	}
	c.observe(0, local) // a server that does not tell its clock
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound after an answer without server_time = %d, want 0", b)
	}
	for _, step := range []struct {
		name   string
		server time.Time     // the answer's server_time
		at     time.Duration // when it arrived, after local
	}{
		{"first answer", server, 50 * time.Millisecond},
		{"a later one", server.Add(100 * time.Millisecond), 110 * time.Millisecond},
		{"a clock stepped back 2 s", server.Add(-time.Second), 1200 * time.Millisecond},
		{"a clock stepped forward 10 s", server.Add(10 * time.Second), 1300 * time.Millisecond},
	} {
		c.observe(v(step.server), local.Add(step.at))
		// Sent 1 s after the answer arrived, window 5 s.
		got := hlc.Time(c.stampBefore(local.Add(step.at+time.Second), 5*time.Second))
		if want := step.server.Add(6 * time.Second); !got.Equal(want) {
			t.Errorf("%s: bound %s, want %s (%s off)", step.name, got, want, got.Sub(want))
		}
	}
}

// TestStampWindow: 5 s of the 6 s fence (1 s left for the servers'
// clocks); a fence too short for a bound (tests) gives none.
func TestStampWindow(t *testing.T) {
	for _, tc := range []struct{ fence, want time.Duration }{
		{FenceAfterBreak, 5 * time.Second},
		{600 * time.Millisecond, 500 * time.Millisecond},
		{120 * time.Millisecond, 100 * time.Millisecond},
		{100 * time.Millisecond, 0},
		{time.Millisecond, 0},
	} {
		if got := stampWindow(tc.fence); got != tc.want {
			t.Errorf("stampWindow(%s) = %s, want %s", tc.fence, got, tc.want)
		}
	}
	var c serverClock
	c.observe(hlc.At(time.Now()), time.Now())
	if b := c.stampBefore(time.Now(), stampWindow(time.Millisecond)); b != 0 {
		t.Errorf("a bound with no window: %d, want 0", b)
	}
}
