package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// pollEvery is how often a fence asks for the committed offsets.
const pollEvery = 20 * time.Millisecond

// maxRefences bounds how often one batch is fenced again because its reads
// outlasted the budget.
const maxRefences = 3

// part is the state of one partition during a run: its fence, what the
// bus scan found for the keys wanted, and the intents logged since the
// fence.
type part struct {
	r    *run
	p    int32
	want map[string]bool

	fence   int64     // intent offset every intent below which is resolved
	fenceAt time.Time // when fence was read
	busEnd  int64     // the bus is scanned up to here
	last    map[string]uint64
	// retainedSince: see Facts.RetainedSince (set by the first scan).
	retainedSince time.Time
	scanned       bool
	// pending holds the versions of the intents of wanted keys logged in
	// [fence, pendingEnd).
	pending    map[string][]uint64
	pendingEnd int64
}

func (r *run) partition(ctx context.Context, p int32, keys [][]byte) (*part, error) {
	pr := &part{r: r, p: p, want: make(map[string]bool, len(keys)), last: map[string]uint64{}}
	for _, k := range keys {
		pr.want[string(k)] = true
	}
	return pr, pr.refence(ctx)
}

func (pr *part) wanted(key []byte) bool { return pr.want[string(key)] }

// refence waits until the resolvers resolved everything logged so far,
// then brings the bus scan up to date.
func (pr *part) refence(ctx context.Context) error {
	o := &pr.r.o
	at, end, err := pr.fenceOnce(ctx)
	if err != nil {
		return err
	}
	if pr.scanned && end < pr.fence {
		return pr.recreated(fmt.Sprintf("its intent partition ends at offset %d, below the %d it ended at before", end, pr.fence))
	}
	ret, err := o.Bus.LastVersionsOf(ctx, pr.r.t.Name, pr.p, pr.busEnd, pr.wanted)
	if err != nil {
		return fmt.Errorf("reconcile %s/%d: %w", pr.r.t.Name, pr.p, err)
	}
	if ret.End < pr.busEnd {
		return pr.recreated(fmt.Sprintf("its event partition ends at offset %d, below the %d scanned before", ret.End, pr.busEnd))
	}
	for k, v := range ret.Last {
		pr.last[k] = max(pr.last[k], v)
	}
	if !pr.scanned {
		pr.scanned = true
		switch {
		case ret.Start == 0: // nothing lost to retention
		case !ret.FirstAt.IsZero():
			pr.retainedSince = ret.FirstAt
		case o.EventRetention > 0: // retention emptied the partition
			pr.retainedSince = at.Add(-o.EventRetention)
		default:
			pr.retainedSince = at.Add(100 * 365 * 24 * time.Hour) // no idea what was lost: all of it
		}
	}
	pr.busEnd = ret.End
	pr.fence, pr.fenceAt = end, at
	pr.pending, pr.pendingEnd = map[string][]uint64{}, end
	return nil
}

// fenceOnce reads the intent partition's end and waits until the
// resolvers resolved everything below it. The wait counts against the
// budget of what is logged against this fence (DESIGN.md), so a wait
// longer than half of it is done again from a new end: the resolvers,
// having caught up that far, then need less time. It returns when the end
// was read, and the end.
func (pr *part) fenceOnce(ctx context.Context) (time.Time, int64, error) {
	o, topic := &pr.r.o, intent.Topic(pr.r.t.Name)
	budget := o.Horizon / 4
	for try := 1; ; try++ {
		at := o.Now()
		_, end, err := o.Log.Bounds(ctx, topic, pr.p)
		if err != nil {
			return at, 0, fmt.Errorf("reconcile %s/%d: intent log: %w", pr.r.t.Name, pr.p, err)
		}
		if err := pr.awaitCommitted(ctx, topic, end); err != nil {
			return at, 0, err
		}
		if err := pr.samePartitions(ctx); err != nil {
			return at, 0, err
		}
		waited := o.Now().Sub(at)
		if waited <= budget/2 {
			return at, end, nil
		}
		if try > maxRefences {
			return at, 0, fmt.Errorf("%w: partition %d of table %s: the resolvers took %s to resolve what was logged before the fence, %d times in a row; reconcile needs less than %s (an eighth of the dedupe horizon): retry when `wail table describe %s` shows less lag",
				ErrNotCaughtUp, pr.p, pr.r.t.Name, waited.Round(time.Millisecond), try, budget/2, pr.r.t.Name)
		}
	}
}

// samePartitions fails with ErrRecreated when the table's intent topic
// has another partition count than the run's: the table was dropped and
// created again, and the run's partitions are not the keys' any more.
func (pr *part) samePartitions(ctx context.Context) error {
	n, err := pr.r.o.Log.Partitions(ctx, intent.Topic(pr.r.t.Name))
	if err != nil {
		return fmt.Errorf("reconcile %s/%d: intent log: %w", pr.r.t.Name, pr.p, err)
	}
	if n != pr.r.t.Partitions {
		return pr.recreated(fmt.Sprintf("its intent topic has %d partitions, not %d", n, pr.r.t.Partitions))
	}
	return nil
}

// recreated is the ErrRecreated error of the partition, saying why.
func (pr *part) recreated(why string) error {
	return fmt.Errorf("%w: table %s, partition %d: %s; nothing more was logged: run it again (the keys logged already are then up to date or in flight)",
		ErrRecreated, pr.r.t.Name, pr.p, why)
}

// awaitCommitted waits until the resolvers' committed offset of the
// partition reaches end.
func (pr *part) awaitCommitted(ctx context.Context, topic string, end int64) error {
	o := &pr.r.o
	deadline := o.Now().Add(o.CatchUp)
	for {
		committed, err := o.Log.Committed(ctx, o.Group, topic)
		if err != nil {
			return fmt.Errorf("reconcile %s/%d: committed offsets: %w", pr.r.t.Name, pr.p, err)
		}
		c := committed[pr.p]
		if c >= end {
			return nil
		}
		if !o.Now().Before(deadline) {
			return fmt.Errorf("%w: partition %d of table %s: intents up to offset %d are logged, the resolvers (group %s) resolved up to %d after %s; is a resolver running? (`wail table describe %s` shows the lag)",
				ErrNotCaughtUp, pr.p, pr.r.t.Name, end, o.Group, c, o.CatchUp, pr.r.t.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// readPending reads the intents logged since the last read, up to the
// partition's end now, and notes the versions of wanted keys.
func (pr *part) readPending(ctx context.Context) error {
	o, topic := &pr.r.o, intent.Topic(pr.r.t.Name)
	_, end, err := o.Log.Bounds(ctx, topic, pr.p)
	if err != nil || end <= pr.pendingEnd {
		return err
	}
	rd, err := o.Log.NewReader(topic, pr.p, pr.pendingEnd)
	if err != nil {
		return fmt.Errorf("reconcile %s/%d: read intents: %w", pr.r.t.Name, pr.p, err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			return fmt.Errorf("reconcile %s/%d: read intents at %d: %w", pr.r.t.Name, pr.p, rd.Position(), err)
		}
		for i := range recs {
			if !pr.wanted(recs[i].Key) {
				continue
			}
			in, err := intent.UnmarshalIntent(recs[i].Value)
			if err != nil || in.Op == intent.Abort {
				continue // the resolver skips what it cannot decode too
			}
			pr.pending[string(in.Key)] = append(pr.pending[string(in.Key)], in.Version)
		}
	}
	pr.pendingEnd = end
	return nil
}

// settle decides keys (all on this partition), in batches, logs the
// intents of those behind and reports each key to emit. scanned, when
// not nil, holds the versions a store scan listed for keys (same order):
// keys whose listed version is not above their last event need no read.
func (pr *part) settle(ctx context.Context, keys [][]byte, scanned []store.KeyVersion, emit func(Key)) error {
	for lo := 0; lo < len(keys); lo += pageKeys {
		hi := min(lo+pageKeys, len(keys))
		var kvs []store.KeyVersion
		if scanned != nil {
			kvs = scanned[lo:hi]
		}
		if err := pr.batch(ctx, keys[lo:hi], kvs, emit); err != nil {
			return err
		}
	}
	return nil
}

func (pr *part) batch(ctx context.Context, keys [][]byte, scanned []store.KeyVersion, emit func(Key)) error {
	o := &pr.r.o
	budget := o.Horizon / 4
	for try := 0; ; try++ {
		if o.Now().Sub(pr.fenceAt) > budget {
			if try > maxRefences {
				return fmt.Errorf("reconcile %s/%d: reading %d keys took longer than %s (a quarter of the dedupe horizon) %d times in a row; is the store slow?",
					pr.r.t.Name, pr.p, len(keys), budget, try)
			}
			if err := pr.refence(ctx); err != nil {
				return err
			}
		}
		out, err := pr.decide(ctx, keys, scanned)
		if err != nil {
			return err
		}
		if o.Now().Sub(pr.fenceAt) > budget {
			continue // too late to log against this fence: fence again
		}
		if err := pr.log(ctx, out); err != nil {
			return err
		}
		for _, k := range out {
			emit(k)
		}
		return nil
	}
}

// decide reads the keys that may be behind and decides each.
func (pr *part) decide(ctx context.Context, keys [][]byte, scanned []store.KeyVersion) ([]Key, error) {
	out := make([]Key, len(keys))
	var read []int // indexes of the keys to read
	for i, k := range keys {
		out[i] = Key{Partition: pr.p, Key: k, LastEvent: pr.last[string(k)]}
		if scanned != nil && scanned[i].Version <= out[i].LastEvent {
			out[i].Stored, out[i].Deleted, out[i].Verdict = scanned[i].Version, scanned[i].Deleted, UpToDate
			continue
		}
		read = append(read, i)
	}
	if len(read) == 0 {
		return out, nil
	}
	st := pr.r.o.Store
	level := store.Level(len(st.Levels()) - 1)
	found := make([]bool, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for _, i := range read {
		g.Go(func() error {
			row, ok, err := st.Get(gctx, pr.r.t.Name, keys[i], level)
			if err != nil {
				err = fmt.Errorf("reconcile %s/%d: read key %q: %w", pr.r.t.Name, pr.p, keys[i], err)
				if pr.r.perKey && gctx.Err() == nil && !storeWide(err) {
					out[i].Err, out[i].Verdict = err, Unreadable // this key's trouble, not the store's
					return nil
				}
				return err
			}
			out[i].Stored, out[i].Deleted, found[i] = row.Version, row.Deleted, ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// After the reads: an intent is durable before its store write, so the
	// intent of every version just read is in the log by now.
	if err := pr.readPending(ctx); err != nil {
		return nil, err
	}
	for _, i := range read {
		k := &out[i]
		if k.Err != nil {
			continue
		}
		pending := false
		for _, v := range pr.pending[string(k.Key)] {
			pending = pending || v == k.Stored
		}
		k.Verdict = Decide(Facts{
			Found: found[i], Version: k.Stored, Deleted: k.Deleted, LastEvent: k.LastEvent, Pending: pending,
			RetainedSince: pr.retainedSince, Compacted: pr.r.o.Compacted,
		})
	}
	return out, nil
}

// storeWide reports whether a read's error is the store's condition, not
// the key's: unavailable, closed (the process is stopping), or the table
// gone (dropped meanwhile). Such an error fails the run; another is the
// key's trouble (a row that does not decode), and the others go on.
func storeWide(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrUnknownTable)
}

// log appends the intents of the keys behind, durably (not in a dry run).
func (pr *part) log(ctx context.Context, keys []Key) error {
	if pr.r.o.DryRun {
		return nil
	}
	now := pr.r.o.Now()
	var recs []*intentlog.Record
	for i := range keys {
		if keys[i].Verdict != Behind {
			continue
		}
		in := pr.r.intentOf(keys[i], now)
		b, err := in.Marshal()
		if err != nil {
			return fmt.Errorf("reconcile %s: encode intent: %w", pr.r.t.Name, err)
		}
		recs = append(recs, &intentlog.Record{Key: in.Key, Value: b})
	}
	if len(recs) == 0 {
		return nil
	}
	// The decisions hold for the table fenced and scanned: not for one
	// created again since, with other partitions.
	if err := pr.samePartitions(ctx); err != nil {
		return err
	}
	// Bounded: an intent that reaches the resolvers later than a quarter
	// horizon after it was logged may find them having forgotten events
	// published since the scan (they dead-letter it then: resolver's
	// catchup.go). An append that gave up may still land (Kafka).
	within := pr.r.o.Horizon / 4
	actx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := pr.r.o.Log.Append(actx, intent.Topic(pr.r.t.Name), recs); err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			err = fmt.Errorf("%w: it did not take %d intents within %s (a quarter of the dedupe horizon); they may land later, and the resolver dead-letters any that lands too late to resolve safely (`wail dlq ls %s`): retry once the log is well: %w",
				ErrSlowLog, len(recs), within, pr.r.t.Name, err)
		}
		return fmt.Errorf("reconcile %s/%d: log %d intents: %w", pr.r.t.Name, pr.p, len(recs), err)
	}
	for i := range keys {
		if keys[i].Verdict == Behind {
			keys[i].Logged = keys[i].Stored
		}
	}
	return nil
}
