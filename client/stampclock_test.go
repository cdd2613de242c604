package client

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// TestServerClock: no bound before a version was answered; then the bound
// is the server's time at the send, estimated by the answer that puts it
// latest (an answer that took longer says less), plus the window.
func TestServerClock(t *testing.T) {
	local := time.Now() // monotonic
	server := hlc.Epoch.Add(200 * 24 * time.Hour)
	v := func(at time.Time) uint64 { return hlc.At(at) | 7 } // logical and proxy bits set
	var c serverClock
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound before any answer = %d, want 0", b)
	}
	c.observe(0, local) // a refused write: no version
	if b := c.stampBefore(local, time.Second); b != 0 {
		t.Fatalf("bound after an answer without a version = %d, want 0", b)
	}
	// Stamped at server time S, answered 50 ms later (local+50ms).
	c.observe(v(server), local.Add(50*time.Millisecond))
	// Stamped at S+100ms, answered at local+110ms: a quicker answer, so
	// server time at local+110ms is at least S+100ms (the first says
	// only S+60ms).
	c.observe(v(server.Add(100*time.Millisecond)), local.Add(110*time.Millisecond))
	// A slow answer says less and changes nothing.
	c.observe(v(server.Add(120*time.Millisecond)), local.Add(400*time.Millisecond))
	got := hlc.Time(c.stampBefore(local.Add(1110*time.Millisecond), 5*time.Second))
	want := server.Add(100*time.Millisecond + time.Second + 5*time.Second)
	if !got.Equal(want) {
		t.Fatalf("bound %s, want %s (%s off)", got, want, got.Sub(want))
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
