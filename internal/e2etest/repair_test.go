package e2etest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// The repair tools end to end: events go missing (intents the resolver
// never resolves, dead letters, a retention gap, store writes behind
// wail's back), then redrive and reconcile run while writers keep
// writing, and the invariant suite checks the bus afterwards.

// repairRig is a table whose events can be lost on purpose.
type repairRig struct {
	t     *testing.T
	ctx   context.Context
	b     Backends
	flaky *flakyStore
	bus   *eventbus.Bus
	tb    catalog.Table
	clock *hlc.Clock
	px    *proxy.Proxy
	h     *history
	opts  Options
	res   *runningResolver
	q     *dlq.Queue
}

func newRepairRig(t *testing.T, ctx context.Context, b Backends, def catalog.Table) *repairRig {
	t.Helper()
	r := &repairRig{t: t, ctx: ctx, b: b, h: &history{}, opts: Options{Writers: 3, HotKeys: 8, ColdKeys: 2000}}
	r.flaky = &flakyStore{Store: b.Store, stored: map[string]map[uint64]storedRow{}, maybe: map[string]map[uint64]storedRow{}}
	r.bus = eventbus.New(b.Log)
	cat := openCatalog(ctx, t, b, r.bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 4})
	var err error
	if r.tb, _, err = cat.Create(ctx, def); err != nil {
		t.Fatal(err)
	}
	if err := b.Log.CreateTopic(ctx, dlq.Topic(def.Name), dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	r.clock, _ = hlc.New(7, nil)
	r.px = proxy.New(b.Log, r.flaky, cat, r.clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
	r.q = dlq.NewQueue(b.Log, def.Name, 0)
	return r
}

func (r *repairRig) startResolver() { r.res = startResolver(r.ctx, r.b, r.bus, r.tb, "r") }

func (r *repairRig) stopResolver() {
	waitResolved(r.t, r.ctx, r.b.Log, groupOf(r.tb.Name), r.tb)
	r.res.stop(r.t)
}

// writing runs the writers until the returned stop is called.
func (r *repairRig) writing() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range r.opts.Writers {
		wg.Go(func() { r.h.write(r.ctx, r.px, r.opts, r.tb.Name, int64(w), &done) })
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// put writes keys through the proxy (acknowledged writes, intents logged).
func (r *repairRig) put(keys []string, tag string) {
	r.t.Helper()
	muts := make([]proxy.Mutation, len(keys))
	for i, k := range keys {
		muts[i] = proxy.Mutation{Table: r.tb.Name, Key: []byte(k), Value: []byte(k + "#" + tag), Delete: i%5 == 4}
	}
	res := r.px.Write(r.ctx, muts)
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	for i, x := range res {
		if x.Err != nil || !x.IntentLogged {
			r.t.Fatalf("write %s: %v", keys[i], x.Err)
		}
		r.h.writes = append(r.h.writes, Write{Key: keys[i], Version: x.Version, Value: string(muts[i].Value), Delete: muts[i].Delete, Acked: true})
		r.h.acked++
	}
}

// behindBack writes keys to the store without an intent (an operator
// writing the database directly): no event will ever come for them.
func (r *repairRig) behindBack(keys []string) {
	r.t.Helper()
	muts := make([]store.Mutation, len(keys))
	for i, k := range keys {
		muts[i] = store.Mutation{Key: []byte(k), Value: []byte(k + "#direct"), Version: r.clock.Now(), Delete: i%4 == 3}
	}
	if _, err := r.flaky.Apply(r.ctx, r.tb.Name, muts); err != nil {
		r.t.Fatal(err)
	}
}

// loseIntents moves the resolvers' committed offsets to the end of the
// intent log (no resolver runs), as if every intent not resolved yet had
// been lost, and returns each partition's lost range [from, to).
func (r *repairRig) loseIntents() map[int32][2]int64 {
	r.t.Helper()
	topic := intent.Topic(r.tb.Name)
	committed, err := r.b.Log.Committed(r.ctx, groupOf(r.tb.Name), topic)
	if err != nil {
		r.t.Fatal(err)
	}
	lost, ends := map[int32][2]int64{}, map[int32]int64{}
	for p := range r.tb.Partitions {
		_, end, err := r.b.Log.Bounds(r.ctx, topic, p)
		if err != nil {
			r.t.Fatal(err)
		}
		if end > committed[p] {
			lost[p] = [2]int64{committed[p], end}
		}
		ends[p] = end
	}
	if err := r.b.Log.Commit(r.ctx, groupOf(r.tb.Name), topic, ends); err != nil {
		r.t.Fatal(err)
	}
	return lost
}

// deadLetter writes what a resolver that gave up on the lost intents would:
// one READ letter per key with its intents.
func (r *repairRig) deadLetter(lost map[int32][2]int64) int {
	r.t.Helper()
	n := 0
	for p, rng := range lost {
		byKey := map[string]*wailv1.DeadLetter{}
		var order []string
		rd, err := r.b.Log.NewReader(intent.Topic(r.tb.Name), p, rng[0])
		if err != nil {
			r.t.Fatal(err)
		}
		for rd.Position() < rng[1] {
			recs, err := rd.Next(r.ctx)
			if err != nil {
				r.t.Fatal(err)
			}
			for _, rec := range recs {
				var in wailv1.Intent
				if err := proto.Unmarshal(rec.Value, &in); err != nil {
					r.t.Fatal(err)
				}
				l := byKey[string(in.Key)]
				if l == nil {
					l = &wailv1.DeadLetter{Table: r.tb.Name, Partition: p, Key: in.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
						Error: "injected: the store would not answer for this key", Attempts: 5, ResolverId: "e2e", DeadAtUs: time.Now().UnixMicro()}
					byKey[string(in.Key)] = l
					order = append(order, string(in.Key))
				}
				l.Intents = append(l.Intents, &in)
				l.IntentOffsets = append(l.IntentOffsets, rec.Offset)
			}
		}
		rd.Close()
		for _, k := range order {
			r.appendLetter(byKey[k])
			n++
		}
	}
	return n
}

func (r *repairRig) appendLetter(l *wailv1.DeadLetter) {
	r.t.Helper()
	rec, err := dlq.LetterRecord(l)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.b.Log.Append(r.ctx, dlq.Topic(r.tb.Name), []*intentlog.Record{rec}); err != nil {
		r.t.Fatal(err)
	}
}

// behind returns the keys whose last event is not the store's state, with
// their stored versions.
func (r *repairRig) behind() map[string]uint64 {
	r.t.Helper()
	last := map[string]Event{}
	for _, e := range readEvents(r.t, r.ctx, r.b.Log, r.tb) {
		last[string(e.Key)] = e
	}
	out := map[string]uint64{}
	for k, row := range finalState(r.t, r.ctx, r.b.Store, r.tb.Name, r.flaky.keys()) {
		if e := last[k]; e.Version != row.Version {
			out[k] = row.Version
		}
	}
	return out
}

// redriveIntents returns the versions of the intents a redrive logged
// (reconcile.Keys, ids "redrive-..."), per key.
func (r *repairRig) redriveIntents() map[string][]uint64 {
	r.t.Helper()
	out := map[string][]uint64{}
	topic := intent.Topic(r.tb.Name)
	for p := range r.tb.Partitions {
		start, end, err := r.b.Log.Bounds(r.ctx, topic, p)
		if err != nil {
			r.t.Fatal(err)
		}
		rd, err := r.b.Log.NewReader(topic, p, start)
		if err != nil {
			r.t.Fatal(err)
		}
		for rd.Position() < end {
			recs, err := rd.Next(r.ctx)
			if err != nil {
				r.t.Fatal(err)
			}
			for _, rec := range recs {
				in, err := intent.UnmarshalIntent(rec.Value)
				if err != nil {
					r.t.Fatalf("intent %s/%d@%d: %v", topic, p, rec.Offset, err)
				}
				if strings.HasPrefix(in.ID, "redrive-") {
					out[string(in.Key)] = append(out[string(in.Key)], in.Version)
				}
			}
		}
		rd.Close()
	}
	return out
}

// checkRedriven checks what concurrent redrives of every letter did, from
// the intent log and the queue rather than from what each call counted:
// which operator logs a key's intent, and whose resolution settles its
// letter (the first one appended), is a race. An operator that looks after
// the other's intent was logged finds the key in flight or up to date and
// logs none, and its resolution (RedriveVersion 0) may be the one that
// settles the letter for both. So:
//   - each key of want (behind at its stored version, and written by
//     nothing else) got a redrive intent at exactly that version, at most
//     one per operator; no key got more than one per operator;
//   - every letter is settled REDRIVEN, and answered with that resolution
//     by at least one operator, by each that answered it;
//   - a RedriveVersion names a redrive intent of the letter's key.
func (r *repairRig) checkRedriven(want map[string]uint64, answers [][]*wailv1.DeadLetterResolution) {
	r.t.Helper()
	logged := r.redriveIntents()
	for k, vs := range logged {
		if len(vs) > len(answers) {
			r.t.Errorf("key %q: %d redrive intents (%v) from %d redrives", k, len(vs), vs, len(answers))
		}
	}
	for k, v := range want {
		if !slices.Contains(logged[k], v) {
			r.t.Errorf("key %q was behind at version %d, but no redrive logged its intent (redrive intents %v)", k, v, logged[k])
		}
	}
	answered := map[int64][]*wailv1.DeadLetterResolution{}
	for _, got := range answers {
		for _, res := range got {
			answered[res.Offset] = append(answered[res.Offset], res)
		}
	}
	all, more, err := r.q.List(r.ctx, dlq.ListOptions{IncludeSettled: true, After: -1, Limit: dlq.MaxLimit})
	if err != nil || more {
		r.t.Fatalf("list the dead letters: more %v, %v", more, err)
	}
	redriven := 0
	for _, e := range all {
		res := e.Resolution
		switch {
		case res == nil || res.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN:
			r.t.Errorf("letter %d (key %q): settled by %v, want REDRIVEN", e.Offset, e.Letter.Key, res)
			continue
		case len(answered[e.Offset]) == 0:
			r.t.Errorf("letter %d (key %q): settled, but no redrive answered it", e.Offset, e.Letter.Key)
		case res.RedriveVersion > 0 && !slices.Contains(logged[string(e.Letter.Key)], res.RedriveVersion):
			r.t.Errorf("letter %d (key %q): redriven at version %d, but no redrive intent has it (%v)", e.Offset, e.Letter.Key, res.RedriveVersion, logged[string(e.Letter.Key)])
		}
		for _, a := range answered[e.Offset] {
			if !proto.Equal(a, res) {
				r.t.Errorf("letter %d: answered %v, but settled by %v", e.Offset, a, res)
			}
		}
		if res.RedriveVersion > 0 {
			redriven++
		}
	}
	n := 0
	for _, vs := range logged {
		n += len(vs)
	}
	r.t.Logf("%d dl keys behind; %d redrive intents logged on %d keys; %d of %d letters settled with a RedriveVersion", len(want), n, len(logged), redriven, len(all))
}

// acked is the number of writes acknowledged so far.
func (r *repairRig) acked() int {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	return r.h.acked
}

// during runs f and fails unless writes were acknowledged meanwhile.
func (r *repairRig) during(what string, f func()) {
	r.t.Helper()
	before := r.acked()
	f()
	if n := r.acked() - before; n == 0 {
		r.t.Errorf("no write was acknowledged during the %s: it did not run while writes continued", what)
	} else {
		r.t.Logf("%d writes acknowledged during the %s", n, what)
	}
}

// check runs the invariant suite over everything written.
func (r *repairRig) check() {
	r.t.Helper()
	if left, _, err := r.q.List(r.ctx, dlq.ListOptions{After: -1}); err != nil || len(left) != 0 {
		r.t.Errorf("unsettled dead letters after the repair: %d (%v)", len(left), err)
	}
	evs := readEvents(r.t, r.ctx, r.b.Log, r.tb)
	Check(r.t, r.h.writes, evs, r.flaky.check, finalState(r.t, r.ctx, r.b.Store, r.tb.Name, r.flaky.keys()), nil)
}

func (r *repairRig) reconcileOptions() (reconcile.Options, reconcile.Table) {
	return reconcile.Options{Log: r.b.Log, Bus: r.bus, Store: r.b.Store, Group: groupOf(r.tb.Name), Horizon: time.Minute},
		reconcile.Table{Name: r.tb.Name, Partitions: r.tb.Partitions}
}

func keysOf(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// damage runs a first stretch of writes with the resolver on (so keys
// have events), then, with the resolver off, writes keys whose intents it
// will never see, and returns the lost intent ranges.
func (r *repairRig) damage(lostKeys []string) map[int32][2]int64 {
	r.t.Helper()
	r.startResolver()
	stop := r.writing()
	r.h.progress(r.t, "before the damage")
	stop()
	r.put(lostKeys, "first") // these get events ...
	r.stopResolver()
	r.put(lostKeys, "lost") // ... these not: their intents are lost
	r.put(keysOf("hot", 4), "lost")
	return r.loseIntents()
}

// TestRedriveWhileWriting: keys whose intents were dead-lettered are
// redriven by two operators at once while writers keep writing to some of
// the same keys; afterwards every invariant holds.
func TestRedriveWhileWriting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRepairRig(t, ctx, openEmbedded(t), catalog.Table{Name: sqltest.Name("redrive_")})
	letters := r.deadLetter(r.damage(keysOf("dl", 40)))
	want := map[string]uint64{} // the writers never write the dl keys: only a redrive publishes them
	for k, v := range r.behind() {
		if strings.HasPrefix(k, "dl-") {
			want[k] = v
		}
	}
	if len(want) < 20 || letters < 40 {
		t.Fatalf("the damage left %d dl keys behind and %d dead letters; want at least 20 and 40", len(want), letters)
	}
	r.startResolver()
	stop := r.writing()
	r.h.progress(t, "before the redrive")
	o, tb := r.reconcileOptions()
	answers := make([][]*wailv1.DeadLetterResolution, 2)
	r.during("redrive", func() {
		var wg sync.WaitGroup
		for i := range answers { // two operators at once
			wg.Go(func() {
				got, err := r.q.Redrive(ctx, dlq.Selection{All: true}, o, tb)
				if err != nil {
					t.Errorf("redrive: %v", err)
				}
				answers[i] = got.Resolutions
			})
		}
		wg.Wait()
	})
	r.h.progress(t, "after the redrive")
	stop()
	r.stopResolver()
	r.checkRedriven(want, answers)
	t.Logf("%d writes acknowledged; %d dead letters", r.h.acked, letters)
	r.check()
}

// TestReconcileAfterGap: a retention gap (GAP letters for the intents the
// resolver never saw) and store writes behind wail's back are repaired by
// reconcile while writers keep writing; it settles the GAP letters.
func TestReconcileAfterGap(t *testing.T) {
	t.Parallel()
	reconcileAfterGap(t, openEmbedded(t))
}

func reconcileAfterGap(t *testing.T, b Backends) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRepairRig(t, ctx, b, catalog.Table{Name: sqltest.Name("gap_")})
	lost := r.damage(keysOf("gap", 40))
	for p, rng := range lost {
		r.appendLetter(&wailv1.DeadLetter{Table: r.tb.Name, Partition: p, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP,
			GapStartOffset: rng[0], GapEndOffset: rng[1], Error: "injected: retention removed intents", ResolverId: "e2e"})
	}
	r.behindBack(keysOf("direct", 20))
	r.behindBack(keysOf("hot", 2))
	if n := len(r.behind()); n < 40 || len(lost) == 0 {
		t.Fatalf("the damage left %d keys behind and %d gaps; want at least 40 and 1", n, len(lost))
	}
	r.startResolver()
	stop := r.writing()
	r.h.progress(t, "before the reconcile")
	o, tb := r.reconcileOptions()
	var rep reconcile.Report
	var settled []*wailv1.DeadLetterResolution
	var err error
	r.during("reconcile", func() {
		var got dlq.Reconciled
		got, err = r.q.Reconcile(ctx, o, tb)
		rep, settled = got.Report, got.Settled
	})
	if err != nil {
		t.Fatal(err)
	}
	r.h.progress(t, "after the reconcile")
	stop()
	r.stopResolver()
	if rep.Behind < 40 || len(settled) != len(lost) {
		t.Errorf("reconcile: %d keys scanned, %d behind, %d in flight, %d GAP letters settled; want at least 40 behind and %d settled",
			rep.Scanned, rep.Behind, rep.InFlight, len(settled), len(lost))
	}
	t.Logf("%d writes acknowledged; reconcile scanned %d keys: %d behind, %d in flight, %d expired", r.h.acked, rep.Scanned, rep.Behind, rep.InFlight, rep.Expired)
	r.check()
}

func TestReconcileAfterGapPostgres(t *testing.T) {
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 8, QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reconcileAfterGap(t, Backends{Log: openLog(t), Store: st})
}

func TestReconcileAfterGapMariaDB(t *testing.T) {
	dsn := sqltest.MySQL(t)
	st, err := mysql.Open(context.Background(), mysql.Options{DSN: sqltest.MySQLDatabase(t, dsn), MaxConns: 8, QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reconcileAfterGap(t, Backends{Log: openLog(t), Store: st})
}

// TestReconcileAfterGapKafkaFake: the same on Kafka (franz-go's in-process
// fake broker), with the resolvers as transactional group members.
func TestReconcileAfterGapKafkaFake(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reconcileAfterGap(t, kafkaBackends(c.ListenAddrs())(t))
}
