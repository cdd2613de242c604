package sink

import (
	"context"
	"errors"
	"sync"

	"github.com/wail-cdc/wail/internal/group"
)

// partitionQueue is how many batches of one partition wait for its
// worker; past it the session waits (a partition whose endpoint requests
// are slow holds the others back only once that many are queued). The
// batches queued and the one in delivery count against the session's
// read-ahead budget (Options.ReadAhead) until delivered: that bounds them
// in bytes, past which the session reads no more.
const partitionQueue = 32

// queued is a batch waiting for, or in, its partition's worker, with the
// release of its read-ahead bytes (group.Session.Hold).
type queued struct {
	msg     group.Message
	release func()
}

// deliverPartitions takes the session's batches and hands each to its
// partition's worker: a partition's batches are delivered (and
// acknowledged) in order, one after another, and at most
// partitions_in_flight partitions have a batch in flight at once. It
// returns when the session or a worker fails, or ctx ends.
func (r *runner) deliverPartitions(ctx context.Context, sess *group.Session) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	slots := make(chan struct{}, max(r.def.PartitionsInFlight, 1))
	worker := func(q <-chan queued) {
		defer wg.Done()
		for {
			var b queued
			select {
			case b = <-q:
			case <-ctx.Done():
				return // what is queued goes back with the session's budget
			}
			msg := b.msg
			// The partition's lock: a redrive of its dead letters
			// (redrive.go) waits for the batch, and the batch for it.
			unlock, err := r.lockPartition(ctx, msg.Partition)
			if err != nil {
				b.release()
				return
			}
			// Checked here, in order, just before delivery: a batch of a
			// partition that moved is dropped, and a queued batch does not
			// count as delivered (its lease starts when it is posted).
			if !sess.Check(msg) {
				unlock()
				b.release()
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				unlock()
				b.release()
				return
			}
			owns := func() bool { return sess.Owns(msg.Partition, msg.Epoch) }
			err = r.handle(ctx, msg, owns)
			<-slots
			unlock()
			b.release()
			if err != nil && !errors.Is(err, errMoved) {
				cancel(err)
				return
			}
		}
	}
	queues := map[int32]chan queued{}
	for {
		msg, err := sess.Next(ctx)
		if err != nil {
			if cause := context.Cause(ctx); ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
				return cause // a worker failed
			}
			return err
		}
		if msg.Granted != nil || msg.Revoked != nil {
			// Recorded for redrive; a revoked partition's queued batches
			// fail Check.
			r.granted(sess, msg)
			continue
		}
		q, ok := queues[msg.Partition]
		if !ok {
			q = make(chan queued, partitionQueue)
			queues[msg.Partition] = q
			wg.Add(1)
			go worker(q)
		}
		b := queued{msg: msg, release: sess.Hold()}
		select {
		case q <- b:
		case <-ctx.Done():
			b.release()
			if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
				return cause
			}
			return ctx.Err()
		}
	}
}
