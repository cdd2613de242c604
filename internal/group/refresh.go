package group

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A group's positions are committed only when its members acknowledge
// events. Kafka forgets a committed offset of a group without Kafka
// members (wail's groups have none: they run their own membership) once
// it was not committed for offsets.retention.minutes (KIP-211; 7 days by
// default): a partition of a table without events kept its position only
// that long, even while a member held it, and a member that joined after
// it was forgotten started where a new group does ("latest": the end),
// skipping the events written while the group had no member. So the
// process that holds a partition for a member commits its position again
// once its last commit here is older than the refresh interval
// (api.group_commit_refresh), through the partition's fenced committer
// (fence.go): on a shared group, the one its owner got when it took the
// partition, so that a refresh never lands under a later owner. Only
// committers that renew (intentlog.CommitRenewer: Kafka's) are used; the
// embedded log keeps committed offsets for ever. A group without any
// member for longer than the retention still loses its positions, as any
// Kafka consumer group does (DESIGN.md, "Consumer groups").

// DefaultCommitRefresh is how old the last commit of a held partition's
// position gets before it is committed again, unless WithCommitRefresh
// says otherwise: far below Kafka's default offsets.retention.minutes
// (7 days).
const DefaultCommitRefresh = time.Hour

// WithCommitRefresh sets how old the last commit of the position of a
// partition held by a member here may get before it is committed again
// (0: never; default DefaultCommitRefresh). Call it before members join.
func (g *Groups) WithCommitRefresh(every time.Duration) *Groups {
	g.refreshEvery.Store(int64(max(every, 0)))
	select {
	case g.refreshSet <- struct{}{}: // the loop's timer follows it
	default:
	}
	return g
}

// committedAt notes that p's position was committed here at now; under
// gr.mu. Whoever held p since (another member here, another process) its
// last commit is at least that recent: a move alone does not make it due.
func (gr *grp) committedAt(p int32, now time.Time) {
	if gr.renewed == nil {
		gr.renewed = map[int32]time.Time{}
	}
	gr.renewed[p] = now
}

// refreshTick is how often the positions are checked for a refresh.
func refreshTick(every time.Duration) time.Duration {
	return min(max(every/8, 5*time.Millisecond), time.Minute)
}

// refreshLoop commits again the positions held here whose last commit
// here is older than the refresh interval, until Close.
func (g *Groups) refreshLoop() {
	defer g.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-g.stop
		cancel()
	}()
	for {
		every := time.Duration(g.refreshEvery.Load())
		t := time.NewTimer(refreshTick(every))
		select {
		case <-g.stop:
			t.Stop()
			return
		case <-g.refreshSet:
			// Set after the loop started (the server sets it after
			// New): the timer taken from the default (a minute's tick)
			// is dropped (TestCommitRefreshKafka).
			t.Stop()
			continue
		case <-t.C:
		}
		if every <= 0 {
			continue
		}
		g.mu.Lock()
		grs := make([]*grp, 0, len(g.groups))
		for _, gr := range g.groups {
			grs = append(grs, gr)
		}
		g.mu.Unlock()
		for _, gr := range grs {
			if ctx.Err() != nil {
				break // Close: the others are not started
			}
			n, err := g.refresh(ctx, gr, every)
			if ctx.Err() == nil {
				g.reportRefresh(gr, n, err)
			}
		}
	}
}

// refresh commits again, each at its committed offset (with the leader
// epoch known with it), the positions of the partitions held here whose
// last commit here is older than every, or unknown (the group loaded, or
// the partition claimed, since: when it was committed is not known). A
// partition that moved to another owner since its last commit here is not
// due for that: every move was due at once, and a rebalance of 64
// partitions cost as many fences and transactions, for nothing
// (TestCommitRefreshNotAtEveryMove). It returns how many positions it
// committed again, and the errors of the others: a partition it did not
// commit (this process's lease on a shared group lapsed; its committer was
// fenced by another process, which then holds it) is neither.
func (g *Groups) refresh(ctx context.Context, gr *grp, every time.Duration) (int, error) {
	start := time.Now()
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if !gr.validNow(start) { // shared: this process's lease lapsed
		return 0, nil
	}
	due := map[int32]uint64{}
	for p, e := range gr.core.Held() {
		if at, ok := gr.renewed[p]; gr.core.Committed(p) >= 0 && (!ok || start.Sub(at) >= every) {
			due[p] = e
		}
	}
	if len(due) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.lease/2) // as an acknowledgement's commit
	defer cancel()
	cs := map[int32]fenced{}
	var errs []error
	if g.shared != nil {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, gr.sh.valid)
		defer c2()
		for p, e := range due {
			if f, ok := gr.fences[p]; ok && f.epoch == e {
				cs[p] = f
			}
		}
	} else {
		// Fenced at the owner's epoch when it has not committed yet, as
		// by its first acknowledgement (ownCommitter), which reads the
		// committed offset after the fence.
		for p, e := range due {
			f, err := gr.ownCommitter(ctx, p, e)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cs[p] = f
		}
	}
	at := map[int32]intentlog.EpochOffset{}
	for p := range cs {
		at[p] = gr.startAt(p, gr.core.Committed(p))
	}
	var failed map[int32]error
	if g.shared != nil {
		// Without the lock, as an acknowledgement's fenced commit: the
		// committer orders them, and never moves the offset back.
		gr.mu.Unlock()
		failed = renewFenced(ctx, cs, at)
		gr.mu.Lock()
	} else {
		failed = renewFenced(ctx, cs, at) // under the lock, as an acknowledgement's
	}
	n := 0
	for p := range cs {
		err, bad := failed[p]
		switch {
		case !bad:
			gr.committedAt(p, start)
			n++
		case g.shared != nil && errors.Is(err, intentlog.ErrFenced):
			gr.dropFenced(p, due[p]) // another process took it
		default:
			errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
		}
	}
	return n, errors.Join(errs...)
}

// renewFenced commits at again through the partitions' committers, in
// parallel; it returns the error of each that failed. A committer that
// does not renew (its log keeps committed offsets) is passed. It returns
// by the end of ctx (Close, the bound) whatever the log does: a renewal
// still running then counts as failed and ends in the background, within
// its committer's own bound (Kafka's: the transaction's abort, up to 10 s,
// not cancellable). Waited for, one such abort per group held Close, and
// the shutdown, for 10 s per group (TestCommitRefreshCloseBounded).
func renewFenced(ctx context.Context, cs map[int32]fenced, at map[int32]intentlog.EpochOffset) map[int32]error {
	var mu sync.Mutex
	errs := map[int32]error{}
	running := map[int32]bool{}
	var wg sync.WaitGroup
	for p, f := range cs {
		r, ok := f.c.(intentlog.CommitRenewer)
		if !ok {
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			errs[p] = ctx.Err()
			mu.Unlock()
			continue
		}
		running[p] = true
		mu.Unlock()
		wg.Go(func() {
			err := r.Renew(ctx, at[p])
			mu.Lock()
			defer mu.Unlock()
			delete(running, p)
			if err != nil {
				errs[p] = err
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	out := maps.Clone(errs)
	for p := range running {
		out[p] = fmt.Errorf("%w (its renewal goes on in the background)", ctx.Err())
	}
	return out
}

// reportRefresh logs when a group's refreshes start and stop failing
// (once each): they are tried again at each tick. Only a refresh that
// committed (n > 0) without failing ends a failure: one that committed
// nothing (the lease lapsed, the committer was fenced, nothing was due)
// says nothing of the log (TestCommitRefreshNoFalseRecovery).
func (g *Groups) reportRefresh(gr *grp, n int, err error) {
	if err == nil && n == 0 {
		return
	}
	gr.mu.Lock()
	was := gr.refreshFailing
	gr.refreshFailing = err != nil
	gr.mu.Unlock()
	switch {
	case err != nil && !was:
		g.logger.Warn("consumer group: could not commit again the positions its members hold here; retried. A position not committed "+
			"for the log's offset retention (Kafka: offsets.retention.minutes) is forgotten, and a member that joins after starts as in a new group",
			"table", gr.table, "group", gr.name, "err", err, "action", "check the log (Kafka): `wail doctor`")
	case err == nil && was:
		g.logger.Info("consumer group: its positions are committed again", "table", gr.table, "group", gr.name)
	}
}
