package resolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultHangCheck is how often a partition asks whether a hanging
// transaction holds its events (Config.HangCheck).
const DefaultHangCheck = 15 * time.Second

// errHanging: a hanging transaction holds the partition's events; the
// partition starts again at once, and its recovery ends the hang
// (Resolver.unhang).
var errHanging = errors.New("resolver: a hanging transaction holds the partition's events")

// hangWatch asks the bus, every Config.HangCheck, whether a hanging Kafka
// transaction holds the loop's event partition. A take-over ends such a
// hang (Resolver.unhang), and the hang's own producer ends it with its
// next marker on the partition; but a hang the owner's producers never
// write after (its keys see no more writes) held every read_committed
// consumer of the partition until the next take-over, with the resolver
// healthy and its intents committed. The check runs beside the loop (it
// may read the partition past the hang), one at a time; the loop waits
// for it only when it stops.
type hangWatch struct {
	result   chan hangResult // buffered: the check never waits for the loop
	running  bool
	last     time.Time
	failures int // checks failed in a row
	wg       sync.WaitGroup
}

// hangResult is a check's answer.
type hangResult struct {
	hung bool
	err  error
}

// hangFailuresWarn is how many checks in a row must fail before the loop
// warns: one failing while the broker restarts says nothing.
const hangFailuresWarn = 3

// check starts a check when none is running and HangCheck passed since
// the last one.
func (h *hangWatch) check(ctx context.Context, l *loop) {
	every := l.r.cfg.HangCheck
	if h.result == nil { // the first check: at a random point of the first interval
		h.result = make(chan hangResult, 1)
		h.last = time.Now().Add(-rand.N(every))
	}
	if h.running || time.Since(h.last) < every {
		return
	}
	h.running, h.last = true, time.Now()
	h.wg.Go(func() {
		cctx, cancel := context.WithTimeout(ctx, max(every, 10*time.Second))
		defer cancel()
		hung, err := l.r.bus.Hanging(cctx, l.table, l.partition)
		h.result <- hangResult{hung: hung, err: err}
	})
}

// wait waits for a check on its way (its context ended first).
func (h *hangWatch) wait() { h.wg.Wait() }

// hung takes a check's answer: when a hang holds the partition, the loop
// drains and stops with errHanging.
func (l *loop) hung(res hangResult) error {
	l.hang.running = false
	if res.err != nil {
		// One failed check (the broker restarting) says nothing: the next
		// asks again. Checks that keep failing leave hangs unfound.
		if l.hang.failures++; l.hang.failures >= hangFailuresWarn {
			l.warn("hangcheck", "cannot check the event partition for hanging Kafka transactions; a hang would hold its consumers until the partition is taken over "+
				"(wail's Kafka principal needs Describe on the topic and on the resolvers' transactional ids)", "failed", l.hang.failures, "err", res.err)
		}
		return nil
	}
	l.hang.failures = 0
	if !res.hung {
		return nil
	}
	l.r.cfg.Logger.Warn("a hanging Kafka transaction holds the resolver's event partition (a broker lost its markers); "+
		"the partition starts again to end it", "table", l.table, "partition", l.partition)
	if err := l.drain(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s/%d", errHanging, l.table, l.partition)
}
