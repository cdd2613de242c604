package client

import (
	"errors"
	"testing"
	"time"
)

// TestUnsentBatchNotLost: a bounded batch its stream's sender never took
// (the stream was given up first) was never sent: requeued without a
// fence, and not marked lost, or its write, failing later, says an earlier
// attempt may have been written when none left the producer.
func TestUnsentBatchNotLost(t *testing.T) {
	l := &loop{p: &Producer{fence: FenceAfterBreak, cfg: ProducerConfig{RetryBackoff: time.Millisecond, RetryBackoffMax: time.Millisecond}},
		window: newStampWindow(FenceAfterBreak), flights: map[uint64]*flight{}, busy: map[string]bool{},
		queued: map[string]int{}, fence: map[string]time.Time{}, stream: &streamConn{gen: 1, cancel: func() {}}}
	w := &pending{key: "tx\x00k", deadline: time.Now().Add(time.Minute)}
	l.flights[1] = &flight{writes: []*pending{w}, bounded: true, deadline: w.deadline}
	l.busy[w.key] = true
	l.broken(errors.New("connection lost"))
	if w.lost {
		t.Fatal("a write whose batch was never sent is marked lost with the stream")
	}
	if len(l.queue) != 1 {
		t.Fatalf("queue %d writes, want the write requeued", len(l.queue))
	}
}
