package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Schedule is an open-loop arrival schedule: batch i of Batch writes is due
// at Start + i*Batch/Rate, for every i whose due time is before
// Start+Duration. Due times depend on nothing but i: a slow target never
// moves them.
type Schedule struct {
	Start    time.Time
	Rate     float64 // writes per second, > 0
	Batch    int     // writes per batch, > 0
	Duration time.Duration
}

// Due returns the intended send time of batch i.
func (s Schedule) Due(i int64) time.Time {
	secs := float64(i) * float64(s.Batch) / s.Rate
	return s.Start.Add(time.Duration(secs * float64(time.Second)))
}

// End is when the schedule stops: no batch is due at or after it.
func (s Schedule) End() time.Time { return s.Start.Add(s.Duration) }

// Batches is the number of batches the schedule holds.
func (s Schedule) Batches() int64 {
	var n int64
	for s.Due(n).Before(s.End()) {
		n++
	}
	return n
}

// Due is one batch handed to a sender: its sequence number in the schedule
// and its intended send time, from which its latencies are measured.
type Due struct {
	Seq int64
	At  time.Time
}

// Dispatch runs schedule s: it hands every batch, at its intended time, to
// one of senders goroutines, which calls send(worker, batch) and returns when
// the target answered. It returns once every batch handed out was answered,
// with the number of batches sent.
//
// When every sender is busy, due batches wait (the dispatcher blocks on a
// queue as deep as the pool) and are sent as soon as a sender frees up, each
// still carrying its intended time; the batches after them keep their own
// times. So the number of batches sent is the schedule's whatever the
// target does, and a stall adds to the latency of every batch that was due
// during it. When ctx ends, batches not yet sent are skipped.
func Dispatch(ctx context.Context, s Schedule, senders int, send func(worker int, d Due)) int64 {
	queue := make(chan Due, senders)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for d := range queue {
				if ctx.Err() != nil {
					continue // interrupted: skip what is queued
				}
				send(w, d)
				sent.Add(1)
			}
		})
	}
	s.feed(ctx, queue)
	close(queue)
	wg.Wait()
	return sent.Load()
}

// feed puts each batch on queue at its due time, until the schedule ends or
// ctx does. Batches already due (after a blocked send) go out without
// waiting.
func (s Schedule) feed(ctx context.Context, queue chan<- Due) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	end := s.End()
	for i := int64(0); ; i++ {
		at := s.Due(i)
		if !at.Before(end) {
			return
		}
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		select {
		case queue <- Due{Seq: i, At: at}:
		case <-ctx.Done():
			return
		}
	}
}
