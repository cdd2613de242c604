package client

import (
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"
)

// TestLostWriteFailsRetriable: a write lost with a broken stream that
// then reaches its delivery timeout fails with a code that says the
// failure was transient and its outcome unknown (unavailable), whatever
// code the transport gave the break. A server killed mid-answer breaks
// the stream with connect's "protocol error: incomplete envelope"
// (internal), and the write failed internal: the code of a bug in the
// server, for a crash the retry would have outlived.
func TestLostWriteFailsRetriable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want connect.Code
	}{
		{"a frame cut off (internal)", connect.NewError(connect.CodeInternal, errors.New("protocol error: incomplete envelope: unexpected EOF")), connect.CodeUnavailable},
		{"a plain error (unknown)", errors.New("connection reset by peer"), connect.CodeUnavailable},
		{"unavailable", connect.NewError(connect.CodeUnavailable, errors.New("connection refused")), connect.CodeUnavailable},
		{"a stuck stream given up (deadline_exceeded)", connect.NewError(connect.CodeDeadlineExceeded, errors.New("a batch got no answer")), connect.CodeDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Producer{fence: FenceAfterBreak, cfg: ProducerConfig{}.withDefaults(),
				space: make(chan struct{}, 1), bytes: semaphore.NewWeighted(1 << 20)}
			p.space <- struct{}{}
			l := &loop{p: p, window: newStampWindow(FenceAfterBreak), flights: map[uint64]*flight{}, busy: map[string]bool{},
				queued: map[string]int{}, fence: map[string]time.Time{}, stream: &streamConn{gen: 1, cancel: func() {}}}
			w := &pending{key: "tx\x00k", deadline: time.Now().Add(time.Minute), result: make(chan outcome, 1)}
			l.flights[1] = &flight{writes: []*pending{w}, deadline: w.deadline}
			l.busy[w.key] = true
			l.broken(tc.err)
			if !w.lost {
				t.Fatal("the write in flight is not lost with its stream")
			}
			l.expire(time.Now().Add(2 * time.Minute))
			var o outcome
			select {
			case o = <-w.result:
			default:
				t.Fatal("the write did not fail at its delivery timeout")
			}
			var werr *WriteError
			if !errors.As(o.err, &werr) || werr.Code != tc.want {
				t.Fatalf("the write failed with %v, want code %s", o.err, tc.want)
			}
		})
	}
}
