package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCloseKeepsReceivedAnswers: answers that reached the producer before
// Close gave up are the writes' outcomes, not ErrClosed: the loop takes
// them before it fails what is left (it picked at random between an
// answer and the abort).
func TestCloseKeepsReceivedAnswers(t *testing.T) {
	t.Parallel()
	lost := 0
	const runs = 12
	for range runs {
		release := make(chan struct{})
		s := &slowServer{arrived: make(chan int, 10), hold: func(int) { <-release }}
		p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: 10 * time.Second}, time.Millisecond)
		errc := make(chan error, 1)
		go func() { _, err := p.Put(context.Background(), "t", []byte("k"), nil); errc <- err }()
		<-s.arrived
		// Stall the loop in takeInbox, so that the answer waits in its
		// channel; meanwhile do what Close does when its ctx has ended.
		p.mu.Lock()
		select {
		case p.notify <- struct{}{}:
		default:
		}
		time.Sleep(20 * time.Millisecond) // the loop takes notify and blocks on p.mu
		close(release)
		// The answer arrives, into the loop's answers channel (unless the
		// loop, not stalled yet, took it itself: the write returned).
		for deadline := time.Now().Add(10 * time.Second); len(p.answers) == 0 && len(errc) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the server's answer never reached the producer")
			}
		}
		p.closed = true
		p.closeOnce.Do(func() { close(p.stop); p.stopStopped() })
		p.abortOnce.Do(func() { close(p.abort) })
		p.mu.Unlock()
		<-p.done
		if err := <-errc; errors.Is(err, ErrClosed) {
			lost++
		} else if err != nil {
			t.Fatalf("the write: %v", err)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d writes the server had answered (the answer received before Close gave up) failed with ErrClosed", lost, runs)
	}
}
