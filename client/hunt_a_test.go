package client

import (
	"testing"
	"time"
)

// TestHuntSlowLinkPastWindowCap: the stamp window's cap (12 times its
// base: 1 min with FenceAfterBreak) brings back the regression that
// 274f735 backed out, on a link slower still: once the bytes of the
// batches in flight take longer than the cap to cross the link
// (MaxInFlight x MaxBatchBytes / rate: 8 x 16 MiB under ~2.2 MB/s with
// the defaults), every batch but the first reaches the server past its
// stamp_before and is refused, again and again, until the writes fail at
// their delivery timeout; all were written before stamp_before. Scaled:
// a 120 ms fence (100 ms window, capped at 1.2 s), 8 batches of 240 KiB
// on a 1 MiB/s link (1.9 s in flight).
func TestHuntSlowLinkPastWindowCap(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ok, failed, last := runSlowLink(t, 120*time.Millisecond)
	t.Logf("ok %d failed %d in %s", ok, failed, time.Since(start))
	if failed > 0 {
		t.Fatalf("%d of %d writes failed on a slow link that carries them all within the delivery timeout; the last: %v", failed, ok+failed, last.Load())
	}
}

// TestHuntSlowLinkUnbounded: the same link without a bound (a fence
// under 120 ms sets none): every write is written.
func TestHuntSlowLinkUnbounded(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ok, failed, last := runSlowLink(t, 50*time.Millisecond)
	t.Logf("ok %d failed %d in %s", ok, failed, time.Since(start))
	if failed > 0 {
		t.Fatalf("%d of %d writes failed; the last: %v", failed, ok+failed, last.Load())
	}
}
