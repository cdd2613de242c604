package resolver

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// gapLog is the env's log with retention past the committed offset of
// its intents: committed 0, log start 5 (the partition resolves a
// retention gap first).
type gapLog struct{ *embedded.Log }

func (l gapLog) Committed(context.Context, string, string) (map[int32]int64, error) {
	return map[int32]int64{0: 0}, nil
}

func (l gapLog) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	if !strings.HasPrefix(topic, intent.Topic("")) {
		return l.Log.Bounds(ctx, topic, p) // the dead letters
	}
	_, end, err := l.Log.Bounds(ctx, topic, p)
	return 5, max(end, 5), err
}

// gatedGroup: the first transaction waits for gate; it records every
// transaction that carries an offset of partition 0 of intents, and
// whether it started after the partition's revocation returned.
type gatedGroup struct {
	fakeGroup
	gate      chan struct{}
	started   chan struct{}
	first     sync.Once
	revoked   atomic.Bool
	late      atomic.Int32 // partition 0 transactions after revoked returned
	part0     atomic.Int32
	intentTop string
}

func (g *gatedGroup) Transact(_ context.Context, _ int, _ map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.first.Do(func() { close(g.started); <-g.gate })
	if _, ok := offsets[g.intentTop][0]; ok {
		g.part0.Add(1)
		if g.revoked.Load() {
			g.late.Add(1)
		}
	}
	return nil
}

// TestGapLetterDroppedOnRevoke: a partition revoked while its
// retention-gap letter (sent before its loop runs) waits in the pump
// behind another partition's transaction: once revoked returned, the
// pump does not commit that letter and offset. It did: the request's
// done was the loop's, closed only when the loop's run returned, and run
// never started; the offset could move back one another owner had moved
// on, and the gap be lettered twice.
func TestGapLetterDroppedOnRevoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "rgap")
	env.write(ctx, t, "k", 1, "one")
	topic := intent.Topic("rgap")
	g := &gatedGroup{gate: make(chan struct{}), started: make(chan struct{}), intentTop: topic}
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	r := New(gapLog{env.log}, env.st, env.bus, cfg)
	pm := newPump(g, 0, 200*time.Millisecond, r.cfg.Metrics.transactions)
	pctx, stopPump := context.WithCancel(ctx)
	defer stopPump()
	go pm.run(pctx)

	// Another partition's transaction occupies the pump.
	live := make(chan struct{})
	go func() { _ = pm.do(ctx, &txnRequest{topic: "other", part: 9, offset: 1, done: live}) }()
	<-g.started

	m := &member{r: r, ctx: ctx, errs: make(chan error, 1), tables: map[string]catalog.Table{topic: env.tb},
		parts: map[tp]*partitionRun{}, unknown: map[tp]bool{}, pumps: []*pump{pm}}
	m.assigned(map[string][]int32{topic: {0}})
	waitUntil(ctx, t, "the gap letter waits in the pump", func() bool { return len(pm.reqs) == 1 })

	revoked := make(chan struct{})
	go func() {
		m.revoked(map[string][]int32{topic: {0}})
		g.revoked.Store(true)
		close(revoked)
	}()
	time.Sleep(50 * time.Millisecond) // the loop stopped; revoked waits for the barrier
	close(g.gate)
	<-revoked
	time.Sleep(500 * time.Millisecond) // past the linger
	if n := g.late.Load(); n > 0 {
		t.Fatalf("%d transaction(s) with partition 0's offset ran after its revocation returned (of %d in all)", n, g.part0.Load())
	}
}
