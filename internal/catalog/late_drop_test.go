package catalog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// idTopics is a Provisioner over a log shared by processes whose topics
// have ids (Kafka): a table's topics made again under its name have
// another id. Unprovision deletes by the ids of t.TopicIDs when it has
// them, else by name.
type idTopics struct {
	mu       sync.Mutex
	ids      map[string]int // table -> id of its topics (absent: none)
	next     int
	failNext bool // the next Unprovision fails, deleting nothing
}

func newIDTopics() *idTopics { return &idTopics{ids: map[string]int{}} }

func (p *idTopics) Provision(_ context.Context, t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.ids[t.Name]; !ok {
		p.next++
		p.ids[t.Name] = p.next
	}
	return nil
}

func (p *idTopics) TopicIDs(_ context.Context, t Table) (TopicIDs, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := TopicIDs{}
	if id, ok := p.ids[t.Name]; ok {
		ids[t.Name] = intentlog.TopicID{byte(id)}
	}
	return ids, nil
}

func (p *idTopics) Unprovision(_ context.Context, t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failNext {
		p.failNext = false
		return errors.New("the log does not answer")
	}
	if t.TopicIDs == nil {
		delete(p.ids, t.Name)
		return nil
	}
	for topic, id := range *t.TopicIDs {
		if now, ok := p.ids[topic]; ok && (intentlog.TopicID{byte(now)}) == id {
			delete(p.ids, topic)
		}
	}
	return nil
}

func (p *idTopics) id(name string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.ids[name]
	return id, ok
}

// TestLateDropLeavesTableCreatedAgain: two processes drop a table at
// about the same time (both find it deleting), one finishes, and the
// table is created again; the slower drop's deletion of the topics,
// arriving late, deleted the new table's topics by name, with the writes
// acknowledged on them. It deletes the topics the table had once it was
// marked deleting, by their ids, and leaves the new table's: whether the
// slower drop read the entry before the ids were saved in it (it marked
// the table deleting itself) or after (an earlier drop saved them and
// failed).
func TestLateDropLeavesTableCreatedAgain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		pinnedFirst bool // a drop saved the ids and failed before the two drops
		byName      bool // the log reads no topic ids (embedded; Kafka before 2.8)
	}{
		{name: "marked by the slow drop"},
		{name: "ids saved by an earlier drop", pinnedFirst: true},
		{name: "by name", byName: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lateDrop(t, c.pinnedFirst, c.byName)
		})
	}
}

// nameTopics is idTopics read by no TopicIDReader: its topics are
// deleted by name (the embedded log; Kafka before 2.8).
type nameTopics struct{ p *idTopics }

func (n nameTopics) Provision(ctx context.Context, t Table) error   { return n.p.Provision(ctx, t) }
func (n nameTopics) Unprovision(ctx context.Context, t Table) error { return n.p.Unprovision(ctx, t) }

func lateDrop(t *testing.T, pinnedFirst, byName bool) {
	ctx := t.Context()
	st := openStore(t)
	log := newIDTopics()
	var prov Provisioner = log
	if byName {
		prov = nameTopics{log}
	}
	fast := openCatalog(t, st, prov, func(o *Options) { o.Refresh = 10 * time.Millisecond })
	slow := openCatalog(t, st, prov, func(o *Options) { o.Refresh = 10 * time.Millisecond })
	if _, _, err := fast.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	old, _ := log.id("t")
	h := &dropHooks{ends: [][]int64{{0, 0}}, committed: []int64{0, 0}}
	hooks := h.hooks()
	if pinnedFirst {
		log.mu.Lock()
		log.failNext = true
		log.mu.Unlock()
		if err := fast.Drop(ctx, "t", true, hooks); err == nil {
			t.Fatal("the drop whose topic deletion failed succeeded")
		}
		if s, ok := saved(t, st, "t"); !ok || s.State != Deleting || s.TopicIDs == nil || len(*s.TopicIDs) != 1 {
			t.Fatalf("after a drop that failed deleting the topics the entry is %+v (found %v), want "+
				"deleting with the id of the topics", s, ok)
		}
	}
	// The slow drop reads the table deleting, then pauses (its process
	// stalls) before it deletes the topics.
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slowHooks := hooks
	slowHooks.Stopped = func(ctx context.Context, t Table) error {
		once.Do(func() { close(paused) })
		<-resume
		return hooks.Stopped(ctx, t)
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Drop(ctx, "t", true, slowHooks) }()
	<-paused
	if s, ok := saved(t, st, "t"); !ok || s.State != Deleting {
		t.Fatalf("the slow drop paused with the entry %+v (found %v), want deleting", s, ok)
	}
	if err := fast.Drop(ctx, "t", true, hooks); err != nil {
		t.Fatalf("the fast drop: %v", err)
	}
	if _, ok := log.id("t"); ok {
		t.Fatal("the fast drop left the topics")
	}
	if _, _, err := fast.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
		t.Fatalf("create again: %v", err)
	}
	recreated, _ := log.id("t")
	close(resume)
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow drop: %v", err)
	}
	if id, ok := log.id("t"); !ok || id != recreated {
		t.Fatalf("after the slow drop's late deletion, the topics of t have id %d (found %v); want %d, the "+
			"table created again (the dropped one's were %d)", id, ok, recreated, old)
	}
	if s, ok := saved(t, st, "t"); !ok || s.State != Ready || s.TopicIDs != nil {
		t.Fatalf("after the slow drop the entry of t is %+v (found %v), want the new table, ready", s, ok)
	}
}

// pausingNameTopics is nameTopics whose first Unprovision pauses (its
// process stalls) until resume is closed: a drop past its check of the
// entry, before its deletion by name.
type pausingNameTopics struct {
	nameTopics
	*gate
}

func (p *pausingNameTopics) Unprovision(ctx context.Context, t Table) error {
	p.pass()
	return p.nameTopics.Unprovision(ctx, t)
}

// TestLateDropByNameLeavesTopicsMadeHere: a drop that deletes the topics
// by name (the embedded log: this process's own) checks, under the topic
// lock of the name, that the store still holds the table it drops, and
// deletes them after. The process pauses between the two; meanwhile
// another drop finishes and the table is created again through this
// process, whose making of the topics (Create: finish) took no topic lock
// and made them before the late deletion by name deleted them.
func TestLateDropByNameLeavesTopicsMadeHere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t)
	log := newIDTopics()
	slowLog := &pausingNameTopics{nameTopics: nameTopics{log}, gate: newGate()}
	refresh := func(o *Options) { o.Refresh = 10 * time.Millisecond }
	fast := openCatalog(t, st, nameTopics{log}, refresh)
	slow := openCatalog(t, st, slowLog, refresh)
	if _, _, err := fast.Create(ctx, Table{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	h := &dropHooks{ends: [][]int64{{0, 0}}, committed: []int64{0, 0}}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Drop(ctx, "t", true, h.hooks()) }()
	select {
	case <-slowLog.entered:
	case err := <-slowDone:
		t.Fatalf("the slow drop ended before deleting the topics: %v", err)
	}
	if err := fast.Drop(ctx, "t", true, h.hooks()); err != nil {
		t.Fatalf("the fast drop: %v", err)
	}
	createDone := make(chan error, 1)
	go func() {
		_, _, err := slow.Create(ctx, Table{Name: "t", Partitions: 2})
		createDone <- err
	}()
	var createErr error
	created := false
	select {
	case createErr = <-createDone:
		created = true
	case <-time.After(200 * time.Millisecond): // waiting for the drop here
	}
	close(slowLog.proceed)
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow drop: %v", err)
	}
	if !created {
		createErr = <-createDone
	}
	if createErr != nil {
		t.Fatalf("create again: %v", createErr)
	}
	if _, ok := log.id("t"); !ok {
		t.Fatal("the slow drop, late, deleted by name the topics of the table created again here")
	}
	if s, ok := saved(t, st, "t"); !ok || s.State != Ready {
		t.Fatalf("after the slow drop the entry of t is %+v (found %v), want the table created again, ready", s, ok)
	}
}
