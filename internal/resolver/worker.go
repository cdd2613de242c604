package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// readTimeout bounds one job of store reads. A read it cut short failed
// with store.ErrUnavailable: a store that does not answer in that time
// cannot serve now, which never counts toward a key's dead letter (the
// outage rule in failure.go).
const readTimeout = 5 * time.Second

// maxReadBatch bounds the reads of one job: the keys one GetMany reads.
const maxReadBatch = 1024

// job is a batch of store reads, all at one level, for the shared worker
// pool: one GetMany on a store.MultiGetter, else one Get per read.
type job struct {
	table string
	reqs  []ReadRequest
	reply chan<- []ReadResult
	done  <-chan struct{} // closed when the loop that asked is gone
}

// worker runs reads from the shared queue until ctx ends.
func (r *Resolver) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.jobs:
			res := r.read(ctx, j.table, j.reqs)
			select {
			case j.reply <- res:
			case <-j.done:
			}
		}
	}
}

// read runs the reads of one job, bounded by readTimeout. Each result's
// Took is the time of the whole call.
func (r *Resolver) read(ctx context.Context, table string, reqs []ReadRequest) []ReadResult {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out := make([]ReadResult, len(reqs))
	for i, rq := range reqs {
		out[i] = ReadResult{Key: rq.Key, Seq: rq.Seq, Level: rq.Level, Probe: rq.Probe}
	}
	began := time.Now()
	if r.multi != nil && len(reqs) > 1 {
		keys := make([][]byte, len(reqs))
		for i := range reqs {
			keys[i] = reqs[i].Key
		}
		reads, err := r.multi.GetMany(rctx, table, keys, reqs[0].Level)
		took := time.Since(began)
		for i := range out {
			out[i].Took = took
			if err != nil {
				out[i].Err = timedOut(ctx, rctx, err)
				continue
			}
			out[i].Row, out[i].Found, out[i].Err = reads[i].Row, reads[i].Found, timedOut(ctx, rctx, reads[i].Err)
		}
		return out
	}
	for i := range out {
		out[i].Row, out[i].Found, out[i].Err = r.store.Get(rctx, table, reqs[i].Key, reqs[i].Level)
		out[i].Err = timedOut(ctx, rctx, out[i].Err)
		out[i].Took = time.Since(began)
		began = time.Now()
	}
	return out
}

// timedOut marks a read error that readTimeout caused (a deadline error
// after rctx ended, while ctx did not) as store.ErrUnavailable; any other
// error keeps its meaning, also when it came late.
func timedOut(ctx, rctx context.Context, err error) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || rctx.Err() == nil || ctx.Err() != nil ||
		errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: no answer within %s: %w", store.ErrUnavailable, readTimeout, err)
}
