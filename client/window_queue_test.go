package client

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestWindowGrowsFromTheSendNotTheQueueing: a batch the loop queued 40 s
// before its answer, behind the bytes of the batches before it on a slow
// link, whose stream's sender took it (and set its bound) 2 s before the
// answer refusing it unstamped, needed a window of 2 s, not 40: the
// window grows to twice the time from the sender's send, as its bound
// counts from there. Grown from the queueing, it went to its 1 min cap,
// and every batch lost with a stream later fenced its keys for 61 s,
// past a shorter delivery timeout.
func TestWindowGrowsFromTheSendNotTheQueueing(t *testing.T) {
	now := time.Now()
	l := &loop{p: &Producer{fence: FenceAfterBreak}, window: newStampWindow(FenceAfterBreak),
		flights: map[uint64]*flight{}, busy: map[string]bool{}, queued: map[string]int{},
		stream: &streamConn{gen: 1}}
	f := &flight{sent: now.Add(-40 * time.Second), deadline: firstDeadline(nil), stuck: now.Add(time.Hour), bounded: true}
	until := now.Add(-2 * time.Second).Add(l.window.get())
	f.until.Store(&until)
	f.window = l.window.get()
	l.flights[1] = f
	l.answer(answer{gen: 1, resp: &wailv1.WriteStreamResponse{Seq: 1, ServerTime: 1,
		Error: &wailv1.Error{Code: connect.CodeUnavailable.String(), Message: "stamp_before passed"}}})
	if got := l.window.get(); got > 10*time.Second {
		t.Fatalf("window %s after a refusal 2 s after its send (40 s after the loop queued it); want at most 10 s", got)
	}
}
